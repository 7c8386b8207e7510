package imagereq

import (
	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	"google.golang.org/protobuf/proto"
)

// FromProto reads an ImageParams message as a client sent it (nil is an empty request): a
// width, height or steps the message does not carry takes its default, one it carries, 0
// included, is checked as it is.
func FromProto(p *diffusionv1.ImageParams) Request {
	r := Request{
		Prompt:         p.GetPrompt(),
		NegativePrompt: p.GetNegativePrompt(),
		Sampler:        p.GetSampler(),
	}
	if p == nil {
		return r
	}
	r.Width, r.Height, r.Steps = intOf(p.Width), intOf(p.Height), intOf(p.Steps)
	if p.CfgScale != nil {
		v := float64(p.GetCfgScale())
		r.CFGScale = &v
	}
	if p.Seed != nil {
		v := p.GetSeed()
		r.Seed = &v
	}
	r.N = intOf(p.N)
	r.InitImage, r.Mask = p.GetInitImage(), p.GetMask()
	if p.Strength != nil {
		v := float64(p.GetStrength())
		r.Strength = &v
	}
	if pv := p.GetPreview(); pv != nil {
		r.Preview = &PreviewRequest{Method: previewMethodName(pv.GetMethod()), Interval: intOf(pv.Interval), Noisy: pv.GetNoisy()}
	}
	return r
}

// previewMethodName is the engine's name of a preview method; "" for none, and the enum's
// number for one this package does not know (refused by Resolve, with it in the reason).
func previewMethodName(m diffusionv1.PreviewMethod) string {
	switch m {
	case diffusionv1.PreviewMethod_PREVIEW_METHOD_UNSPECIFIED:
		return ""
	case diffusionv1.PreviewMethod_PREVIEW_METHOD_PROJ:
		return "proj"
	case diffusionv1.PreviewMethod_PREVIEW_METHOD_TAE:
		return "tae"
	case diffusionv1.PreviewMethod_PREVIEW_METHOD_VAE:
		return "vae"
	}
	return m.String()
}

// PreviewMethodProto is the enum value of a preview method name ("" or unknown: UNSPECIFIED).
func PreviewMethodProto(name string) diffusionv1.PreviewMethod {
	switch name {
	case "proj":
		return diffusionv1.PreviewMethod_PREVIEW_METHOD_PROJ
	case "tae":
		return diffusionv1.PreviewMethod_PREVIEW_METHOD_TAE
	case "vae":
		return diffusionv1.PreviewMethod_PREVIEW_METHOD_VAE
	}
	return diffusionv1.PreviewMethod_PREVIEW_METHOD_UNSPECIFIED
}

// ToProto writes resolved parameters as the ImageParams message that reproduces them (the
// edit's image and mask bytes included: WithoutUploads drops them for records and results).
// n is written only for a batch, and preview only when asked for, so that a plain request
// reads as before.
func ToProto(p Params) *diffusionv1.ImageParams {
	cfg, seed := float32(p.CFGScale), p.Seed
	w, h, steps := int32(p.Width), int32(p.Height), int32(p.Steps)
	m := &diffusionv1.ImageParams{
		Prompt: p.Prompt, NegativePrompt: p.NegativePrompt,
		Width: &w, Height: &h, Steps: &steps,
		CfgScale: &cfg, Seed: &seed, Sampler: p.Sampler,
	}
	if p.N > 1 {
		n := int32(p.N)
		m.N = &n
	}
	if p.Preview.Enabled() {
		iv := int32(p.Preview.Interval)
		m.Preview = &diffusionv1.PreviewOptions{Method: PreviewMethodProto(p.Preview.Method), Interval: &iv, Noisy: p.Preview.Noisy}
	}
	if e := p.Edit; e != nil {
		st := float32(e.Strength)
		m.InitImage, m.Mask, m.Strength = e.Image, e.Mask, &st
	}
	return m
}

// WithoutUploads is a copy of p without the edit's image and mask bytes (nil stays nil):
// what job records, listings and results carry, so that they stay small. Strength stays, so
// the copy still says it was an edit.
func WithoutUploads(p *diffusionv1.ImageParams) *diffusionv1.ImageParams {
	if p == nil || (len(p.GetInitImage()) == 0 && len(p.GetMask()) == 0) {
		return p
	}
	c := proto.CloneOf(p)
	c.InitImage, c.Mask = nil, nil
	return c
}

// intOf widens an optional proto field (nil stays nil: not sent).
func intOf(v *int32) *int {
	if v == nil {
		return nil
	}
	i := int(*v)
	return &i
}

// Validate checks an ImageParams message with exactly the rules Resolve applies, without
// drawing a seed: what every edge calls before anything is queued or any LLM is offloaded.
func Validate(p *diffusionv1.ImageParams) error {
	_, err := Resolve(FromProto(p), nil)
	return err
}

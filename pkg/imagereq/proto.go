package imagereq

import diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"

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
	return r
}

// ToProto writes resolved parameters as the ImageParams message that reproduces them.
func ToProto(p Params) *diffusionv1.ImageParams {
	cfg, seed := float32(p.CFGScale), p.Seed
	w, h, steps := int32(p.Width), int32(p.Height), int32(p.Steps)
	return &diffusionv1.ImageParams{
		Prompt: p.Prompt, NegativePrompt: p.NegativePrompt,
		Width: &w, Height: &h, Steps: &steps,
		CfgScale: &cfg, Seed: &seed, Sampler: p.Sampler,
	}
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

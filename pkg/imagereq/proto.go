package imagereq

import diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"

// FromProto reads an ImageParams message as a client sent it (nil is an empty request).
func FromProto(p *diffusionv1.ImageParams) Request {
	r := Request{
		Prompt:         p.GetPrompt(),
		NegativePrompt: p.GetNegativePrompt(),
		Width:          int(p.GetWidth()),
		Height:         int(p.GetHeight()),
		Steps:          int(p.GetSteps()),
		Sampler:        p.GetSampler(),
	}
	if p != nil && p.CfgScale != nil {
		v := float64(p.GetCfgScale())
		r.CFGScale = &v
	}
	if p != nil && p.Seed != nil {
		v := p.GetSeed()
		r.Seed = &v
	}
	return r
}

// ToProto writes resolved parameters as the ImageParams message that reproduces them.
func ToProto(p Params) *diffusionv1.ImageParams {
	cfg, seed := float32(p.CFGScale), p.Seed
	return &diffusionv1.ImageParams{
		Prompt: p.Prompt, NegativePrompt: p.NegativePrompt,
		Width: int32(p.Width), Height: int32(p.Height), Steps: int32(p.Steps),
		CfgScale: &cfg, Seed: &seed, Sampler: p.Sampler,
	}
}

// Validate checks an ImageParams message with exactly the rules Resolve applies, without
// drawing a seed: what every edge calls before anything is queued or any LLM is offloaded.
func Validate(p *diffusionv1.ImageParams) error {
	_, err := Resolve(FromProto(p), nil)
	return err
}

package modelstore

import "github.com/genailab/genailab/pkg/modelstore/presetid"

// Preset is a well-known model the clients can offer for one-click download.
// Sizes are approximate (as the Hugging Face file listings show them, in
// decimal units); sums are given only where the Hub's LFS details were
// checked, and revisions are pinned to a commit where one was known.
type Preset struct {
	ID          string
	Name        string
	Type        Type
	Description string
	License     string
	SizeBytes   int64 // approximate total
	Parts       []PresetPart
	LLM         *LLMSettings       // recommended settings for llama-server
	Diffusion   *DiffusionSettings // recommended settings for stable-diffusion.cpp
}

// PresetPart is one file of a preset.
type PresetPart struct {
	Component string
	HF        HFFile
	SHA256    string // empty when not verified
	SizeBytes int64  // approximate
}

// LLMSettings are recommended llama-server settings.
type LLMSettings struct {
	ContextSize int
	GPULayers   int // -1: all layers
	Temperature float64
}

// DiffusionSettings are recommended stable-diffusion.cpp settings.
type DiffusionSettings struct {
	Width, Height int
	Steps         int
	CFGScale      float64
	Sampler       string
}

// Request turns a preset into a download request.
func (p Preset) Request() Request {
	r := Request{ID: p.ID, Name: p.Name}
	for _, part := range p.Parts {
		hf := part.HF
		r.Parts = append(r.Parts, Part{Component: part.Component, HF: &hf, SHA256: part.SHA256})
	}
	return r
}

// Presets returns the built-in catalog of one type (all types when t is "").
// The result is a fresh copy.
func Presets(t Type) []Preset {
	var out []Preset
	for _, p := range builtinPresets() {
		if t == "" || p.Type == t {
			out = append(out, p)
		}
	}
	return out
}

// PresetByID finds a preset.
func PresetByID(id string) (Preset, bool) {
	for _, p := range builtinPresets() {
		if p.ID == id {
			return p, true
		}
	}
	return Preset{}, false
}

func builtinPresets() []Preset {
	return []Preset{
		{
			ID:          presetid.Qwen25Instruct05BQ4KM,
			Name:        "Qwen2.5 0.5B Instruct (Q4_K_M)",
			Type:        TypeLLM,
			Description: "Smallest Qwen2.5 chat model, 494M parameters, 32K context; runs on any CPU.",
			License:     "apache-2.0",
			SizeBytes:   398_000_000,
			Parts: []PresetPart{{
				Component: ComponentModel,
				HF:        HFFile{Repo: "lmstudio-community/Qwen2.5-0.5B-Instruct-GGUF", File: "Qwen2.5-0.5B-Instruct-Q4_K_M.gguf", Revision: "main"},
				SizeBytes: 398_000_000,
			}},
			LLM: &LLMSettings{ContextSize: 8192, GPULayers: -1, Temperature: 0.7},
		},
		{
			ID:          presetid.Llama32Instruct1BQ4KM,
			Name:        "Llama 3.2 1B Instruct (Q4_K_M)",
			Type:        TypeLLM,
			Description: "Meta's small multilingual chat model, 1.2B parameters, 128K context.",
			License:     "llama3.2",
			SizeBytes:   808_000_000,
			Parts: []PresetPart{{
				Component: ComponentModel,
				HF: HFFile{Repo: "bartowski/Llama-3.2-1B-Instruct-GGUF", File: "Llama-3.2-1B-Instruct-Q4_K_M.gguf",
					Revision: "d52af3776f99ddf220e5ffd3f93b2a4e4df105be"},
				SHA256:    "6f85a640a97cf2bf5b8e764087b1e83da0fdb51d7c9fab7d0fece9385611df83",
				SizeBytes: 808_000_000,
			}},
			LLM: &LLMSettings{ContextSize: 8192, GPULayers: -1, Temperature: 0.6},
		},
		{
			ID:          presetid.StableDiffusion15Q51,
			Name:        "Stable Diffusion 1.5 (GGUF Q5_1)",
			Type:        TypeDiffusion,
			Description: "The classic 512x512 text-to-image model in one file, quantized for stable-diffusion.cpp.",
			License:     "creativeml-openrail-m",
			SizeBytes:   1_640_000_000,
			Parts: []PresetPart{{
				Component: ComponentModel,
				HF: HFFile{Repo: "second-state/stable-diffusion-v1-5-GGUF", File: "stable-diffusion-v1-5-pruned-emaonly-Q5_1.gguf",
					Revision: "031b5f5df991f511b3f5fa8fed6d99048ababb69"},
				SHA256:    "b1342857c5d5ba796b7f4e8b23ed45981afe71e3ce440f226b51e7df5d9c1dd9",
				SizeBytes: 1_640_000_000,
			}},
			Diffusion: &DiffusionSettings{Width: 512, Height: 512, Steps: 20, CFGScale: 7, Sampler: "euler_a"},
		},
		{
			ID:          presetid.Flux1SchnellQ4K,
			Name:        "FLUX.1 schnell (GGUF Q4_K)",
			Type:        TypeDiffusion,
			Description: "Fast 4-step FLUX model made of four parts (diffusion model, VAE, CLIP-L, T5-XXL), quantized for stable-diffusion.cpp.",
			License:     "apache-2.0",
			SizeBytes:   6_880_000_000 + 168_000_000 + 131_000_000 + 2_750_000_000,
			Parts: []PresetPart{
				{Component: ComponentDiffusionModel, HF: fluxFile("flux1-schnell-q4_k.gguf"), SizeBytes: 6_880_000_000},
				{Component: ComponentVAE, HF: fluxFile("ae-f16.gguf"), SizeBytes: 168_000_000},
				{Component: ComponentClipL, HF: fluxFile("clip_l-q8_0.gguf"), SizeBytes: 131_000_000},
				{Component: ComponentT5XXL, HF: fluxFile("t5xxl_q4_k.gguf"), SizeBytes: 2_750_000_000},
			},
			Diffusion: &DiffusionSettings{Width: 1024, Height: 1024, Steps: 4, CFGScale: 1, Sampler: "euler"},
		},
	}
}

func fluxFile(name string) HFFile {
	return HFFile{Repo: "Green-Sky/flux.1-schnell-GGUF", File: name, Revision: "0e781e93b065d01ea640355f40e0705101ec5440"}
}

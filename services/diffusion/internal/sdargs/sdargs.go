// Package sdargs builds the command-line arguments that stable-diffusion.cpp's sd-cli and
// sd-server share: the model files and the memory-saving flags.
package sdargs

import "errors"

// Model names the files of a diffusion model: either one full model (Path, `-m`) or a
// standalone diffusion model with its separate parts. VAE and text encoders may also accompany
// a full model.
type Model struct {
	Path           string // -m
	DiffusionModel string // --diffusion-model
	ClipL          string // --clip_l
	ClipG          string // --clip_g
	T5XXL          string // --t5xxl
	LLM            string // --llm
	VAE            string // --vae
}

// ErrNoModel: neither a full model nor a diffusion model is given.
var ErrNoModel = errors.New("no model file: need a full model or a diffusion model")

// Validate checks that a model can be loaded at all.
func (m Model) Validate() error {
	if m.Path == "" && m.DiffusionModel == "" {
		return ErrNoModel
	}
	return nil
}

// Files lists the model's files, in argument order.
func (m Model) Files() []string {
	var out []string
	for _, f := range []string{m.Path, m.DiffusionModel, m.ClipL, m.ClipG, m.T5XXL, m.LLM, m.VAE} {
		if f != "" {
			out = append(out, f)
		}
	}
	return out
}

// Args are `-m PATH` and then the component flags in the order --diffusion-model --clip_l
// --clip_g --t5xxl --llm --vae, each only when set.
func (m Model) Args() []string {
	var a []string
	add := func(flag, v string) {
		if v != "" {
			a = append(a, flag, v)
		}
	}
	add("-m", m.Path)
	add("--diffusion-model", m.DiffusionModel)
	add("--clip_l", m.ClipL)
	add("--clip_g", m.ClipG)
	add("--t5xxl", m.T5XXL)
	add("--llm", m.LLM)
	add("--vae", m.VAE)
	return a
}

// Memory are the memory-saving switches.
type Memory struct {
	OffloadToCPU bool // --offload-to-cpu
	VAETiling    bool // --vae-tiling
	ClipOnCPU    bool // --clip-on-cpu
	VAEOnCPU     bool // --vae-on-cpu
	DiffusionFA  bool // --diffusion-fa
}

// Args are the set switches, in the order above.
func (m Memory) Args() []string {
	var a []string
	for _, f := range []struct {
		on   bool
		flag string
	}{
		{m.OffloadToCPU, "--offload-to-cpu"},
		{m.VAETiling, "--vae-tiling"},
		{m.ClipOnCPU, "--clip-on-cpu"},
		{m.VAEOnCPU, "--vae-on-cpu"},
		{m.DiffusionFA, "--diffusion-fa"},
	} {
		if f.on {
			a = append(a, f.flag)
		}
	}
	return a
}

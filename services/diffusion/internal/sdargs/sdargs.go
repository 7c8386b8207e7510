// Package sdargs builds the command-line arguments that stable-diffusion.cpp's sd-cli and
// sd-server share: the model files and the memory-saving flags.
package sdargs

import (
	"errors"
	"strings"
)

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
	ClipOnCPU    bool // --backend te=cpu (older builds: --clip-on-cpu)
	VAEOnCPU     bool // --backend vae=cpu (older builds: --vae-on-cpu)
	DiffusionFA  bool // --diffusion-fa

	// Offered are the flags the engine binary offers (ParseHelp of its --help), set by the
	// engine, not by users: it selects --backend over the deprecated --clip-on-cpu and
	// --vae-on-cpu when the binary has it. nil means an unknown build: the old forms.
	Offered Flags
}

// Args are the set switches, in the order above.
func (m Memory) Args() []string {
	var a []string
	if m.OffloadToCPU {
		a = append(a, "--offload-to-cpu")
	}
	if m.VAETiling {
		a = append(a, "--vae-tiling")
	}
	if m.Offered.Has("--backend") {
		var assign []string
		if m.ClipOnCPU {
			assign = append(assign, "te=cpu")
		}
		if m.VAEOnCPU {
			assign = append(assign, "vae=cpu")
		}
		if len(assign) > 0 {
			a = append(a, "--backend", strings.Join(assign, ","))
		}
	} else {
		if m.ClipOnCPU {
			a = append(a, "--clip-on-cpu")
		}
		if m.VAEOnCPU {
			a = append(a, "--vae-on-cpu")
		}
	}
	if m.DiffusionFA {
		a = append(a, "--diffusion-fa")
	}
	return a
}

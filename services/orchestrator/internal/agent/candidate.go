package agent

import (
	commonv1 "github.com/genailab/genailab/gen/common/v1"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/services/orchestrator/internal/decide"
	"github.com/genailab/genailab/services/orchestrator/internal/estimate"
	"github.com/genailab/genailab/services/orchestrator/internal/place"
	"github.com/genailab/genailab/services/orchestrator/internal/probe"
)

// PlaceOptions are what placement estimates an image on a host with.
type PlaceOptions struct {
	// DiffusionModel is the lab's diffusion model ("": each host's configured one).
	DiffusionModel string
	// Probe tunes the estimate and the decision (headroom, budget, GPU, factors).
	Probe probe.Options
}

// ImageRequest is what placement estimates an image from.
type ImageRequest struct {
	Width, Height int
	// N, Edit and DecodedPreviews add to the estimate (estimate.DiffusionParams).
	N                     int
	Edit, DecodedPreviews bool
	// CorrectionBytes is the learnt correction of the model's estimate.
	CorrectionBytes int64
}

// modelLocked is the diffusion model an image would use on this host: the lab's model when
// configured, else the one its engine is configured with.
func (a *Agent) modelLocked(lab string) string {
	if lab != "" {
		return lab
	}
	return a.engineModelLocked()
}

// engineModelLocked is the diffusion model the host's engine has loaded, else the one it is
// configured with ("" when unknown).
func (a *Agent) engineModelLocked() string {
	di := a.tel.diffusion
	if m := di.GetModelId(); m != "" {
		return m
	}
	return di.GetConfig().GetModelId()
}

// Candidate is the host as placement sees it, from the cached telemetry only: running
// images (and LLM reloads) run on it now, queued images wait for it alone.
func (a *Agent) Candidate(o PlaceOptions, req ImageRequest, running, queued int) place.Candidate {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := place.Candidate{Name: a.Spec.Name, Queued: queued + running, Caps: a.tel.caps}
	st, why := a.stateLocked()
	switch {
	case st != 0 && st != orchestratorv1.HostState_HOST_STATE_READY:
		c.Why = why
	case running > 0:
		c.Busy, c.Why = true, "busy"
	default:
		c.Usable = true
	}
	model := a.modelLocked(o.DiffusionModel)
	di := a.tel.diffusion
	engineModel := a.engineModelLocked()
	size, installed := a.tel.models[model]
	c.HasModel = model != "" && (installed || engineModel == model)
	switch {
	case c.HasModel:
	case model == "":
		c.NoModelWhy = "the diffusion engine is not running and no diffusion model is configured: start the engine first"
	default:
		c.NoModelWhy = "diffusion model " + model + " is not installed"
	}
	// Only a running sd-server holds a model: in CLI mode every image starts an sd-cli
	// that loads the model for that image alone.
	mode := probe.DiffusionMode(di)
	c.LoadsPerImage = mode == estimate.ModeCLI
	c.ModelLoaded = c.HasModel && mode == estimate.ModeServer && di.GetStatus() == commonv1.ServerStatus_SERVER_STATUS_RUNNING && engineModel == model

	img := estimate.EstimateDiffusion(estimate.DiffusionParams{
		ComponentBytes: size, Width: req.Width, Height: req.Height, Mode: mode,
		WeightsFactor: o.Probe.WeightsFactor, BytesPerPixel: o.Probe.BytesPerPixel, CorrectionBytes: req.CorrectionBytes,
		Images: req.N, Edit: req.Edit, DecodedPreviews: req.DecodedPreviews,
	})
	in := decide.Input{Image: img, HeadroomBytes: o.Probe.HeadroomBytes, BudgetBytes: o.Probe.BudgetBytes, DiffusionMode: mode}
	if a.Spec.BudgetBytes > 0 {
		in.BudgetBytes = a.Spec.BudgetBytes
	}
	li := a.tel.llm
	in.LLMRunning = li != nil && probe.Running(li)
	c.LLMRunning, c.LLMBusy = in.LLMRunning, li.GetInFlightRequests() > 0
	pid := li.GetPid()
	u := a.tel.usage
	if g := probe.PickGPU(u.GetGpus(), o.Probe.GPUIndex); g != nil {
		in.GPUIndex, in.FreeBytes, in.ManagedBytes = int(g.GetIndex()), g.GetMemoryFreeBytes(), g.GetManagedMemoryBytes()
		for _, gp := range g.GetProcesses() {
			if pid > 0 && gp.GetPid() == pid {
				in.LLMReleaseBytes += gp.GetUsedMemoryBytes()
			}
		}
	} else {
		in.GPUIndex, in.FreeBytes = -1, u.GetMemory().GetAvailableBytes()
		for _, mp := range u.GetManagedProcesses() {
			in.ManagedBytes += mp.GetRssBytes()
			if pid > 0 && mp.GetPid() == pid {
				in.LLMReleaseBytes = mp.GetRssBytes()
			}
		}
	}
	if probe.ServerResident(di, model) {
		in.DiffusionResidentBytes = probe.DiffusionMemory(u, in.GPUIndex)
	}
	d := decide.Numbers(in)
	c.NeedBytes = d.NeedBytes
	c.AvailableBytes, c.AfterOffloadBytes, c.LLMBytes = d.AvailableBytes, d.AvailableAfterOffloadBytes, in.LLMReleaseBytes
	return c
}

// freeLocked is the memory the engines can use now (budget ignored): free memory of the
// engines' GPU, or available RAM.
func (a *Agent) freeLocked(gpuIndex int) uint64 {
	u := a.tel.usage
	if g := probe.PickGPU(u.GetGpus(), gpuIndex); g != nil {
		return g.GetMemoryFreeBytes()
	}
	return u.GetMemory().GetAvailableBytes()
}

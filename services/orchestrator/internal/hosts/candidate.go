package hosts

import (
	"sort"

	commonv1 "github.com/genailab/genailab/gen/common/v1"
	"github.com/genailab/genailab/services/orchestrator/internal/decide"
	"github.com/genailab/genailab/services/orchestrator/internal/estimate"
	"github.com/genailab/genailab/services/orchestrator/internal/place"
	"github.com/genailab/genailab/services/orchestrator/internal/probe"
)

// ImageRequest is what placement estimates an image from.
type ImageRequest struct {
	Width, Height int
	// CorrectionBytes is the learnt correction of the model's estimate.
	CorrectionBytes int64
}

// modelLocked is the diffusion model an image would use on this host: the lab's model when
// configured, else the one its engine is configured with.
func (h *Host) modelLocked(lab string) string {
	if lab != "" {
		return lab
	}
	return h.engineModelLocked()
}

// engineModelLocked is the diffusion model the host's engine has loaded, else the one it is
// configured with ("" when unknown).
func (h *Host) engineModelLocked() string {
	di := h.tel.diffusion
	if m := di.GetModelId(); m != "" {
		return m
	}
	return di.GetConfig().GetModelId()
}

// candidateLocked is the host as placement sees it, from the cached telemetry only.
func (h *Host) candidateLocked(o *Options, req ImageRequest, queued int) place.Candidate {
	c := place.Candidate{Name: h.Spec.Name, Queued: queued + h.busy}
	st, why := h.stateLocked()
	switch {
	case st != 0 && st != readyState:
		c.Why = why
	case h.busy > 0:
		c.Busy, c.Why = true, "busy"
	default:
		c.Usable = true
	}
	model := h.modelLocked(o.DiffusionModel)
	di := h.tel.diffusion
	engineModel := h.engineModelLocked()
	size, installed := h.tel.models[model]
	c.HasModel = model != "" && (installed || engineModel == model)
	switch {
	case c.HasModel:
	case model == "":
		c.NoModelWhy = "the diffusion engine is not running and no diffusion model is configured: start the engine first"
	default:
		c.NoModelWhy = "diffusion model " + model + " is not installed"
	}
	c.ModelLoaded = c.HasModel && di != nil && di.GetStatus() == commonv1.ServerStatus_SERVER_STATUS_RUNNING && engineModel == model

	mode := probe.DiffusionMode(di)
	img := estimate.EstimateDiffusion(estimate.DiffusionParams{
		ComponentBytes: size, Width: req.Width, Height: req.Height, Mode: mode,
		WeightsFactor: o.Probe.WeightsFactor, BytesPerPixel: o.Probe.BytesPerPixel, CorrectionBytes: req.CorrectionBytes,
	})
	in := decide.Input{Image: img, HeadroomBytes: o.Probe.HeadroomBytes, BudgetBytes: o.Probe.BudgetBytes, DiffusionMode: mode}
	if h.Spec.BudgetBytes > 0 {
		in.BudgetBytes = h.Spec.BudgetBytes
	}
	li := h.tel.llm
	in.LLMRunning = li != nil && probe.Running(li)
	c.LLMRunning, c.LLMBusy = in.LLMRunning, li.GetInFlightRequests() > 0
	pid := li.GetPid()
	u := h.tel.usage
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
func (h *Host) freeLocked(gpuIndex int) uint64 {
	u := h.tel.usage
	if g := probe.PickGPU(u.GetGpus(), gpuIndex); g != nil {
		return g.GetMemoryFreeBytes()
	}
	return u.GetMemory().GetAvailableBytes()
}

func sortStrings(s []string) { sort.Strings(s) }

// Package decide is the offload decision: does an image fit in the memory free now, or must
// the LLM be stopped first? It is a pure function of the numbers (gathered by the probe
// package) and returns the decision with every number behind it and one human sentence.
//
// Per GPU the engines use (NVML free memory, which already counts foreign processes), or
// available RAM on a host without a GPU:
//
//	available now   = free                       (and, with a budget: ≤ budget − managed)
//	available after = free + LLM release          (and, with a budget: ≤ budget − managed + LLM release)
//	need            = estimate − what sd-server holds now (server mode) + headroom
//	needs offload   = LLM running and need > available now
//
// When even the memory after an offload is too small, the LLM is still offloaded: that is
// the image's best chance, and the sentence says so.
//
// Server mode: the estimate is sd-server's peak, model included, and what the running
// sd-server already holds is in use (not free, and counted in managed), so only the rest is
// needed. sd-server loads its model on its first job and keeps it: what it keeps after the
// image (at least the estimate's weights and overhead) is memory the LLM cannot have. When
// the LLM is offloaded and the growth of sd-server does not fit in what is available now,
// the LLM will not fit back beside it (LLMFitsBack false), and the sentence says so. The
// decision never stops sd-server to make room: the image runs on it, and a restart would
// load the same weights again.
package decide

import (
	"fmt"
	"strings"

	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/services/orchestrator/internal/estimate"
)

// Input is what the decision is made from.
type Input struct {
	// Image is the estimate of what the image needs.
	Image estimate.Diffusion
	// GPUIndex is the GPU the engines use; -1 means the host has none and RAM is compared.
	GPUIndex int
	// FreeBytes is NVML free memory on that GPU, or available RAM.
	FreeBytes uint64
	// ManagedBytes is what this host's engines use there now (counted against the budget).
	ManagedBytes uint64
	// ForeignBytes is what other processes use there now (for the explanation).
	ForeignBytes uint64
	// LLMRunning tells whether the LLM is running.
	LLMRunning bool
	// LLMReleaseBytes is what stopping the LLM would free there.
	LLMReleaseBytes uint64
	// LLMReleaseSource says where that figure comes from ("measured", "gguf-parser-go", ...).
	LLMReleaseSource string
	// HeadroomBytes is kept free on top of the estimate.
	HeadroomBytes uint64
	// BudgetBytes, when not 0, caps what this host's engines may use there together.
	BudgetBytes uint64
	// DiffusionMode is the diffusion engine's mode: in server mode one sd-server makes every
	// image and keeps the model loaded between them.
	DiffusionMode estimate.EngineMode
	// DiffusionResidentBytes is what a running sd-server with the image's model holds there
	// now, as measured (RSS, or GPU memory); 0 in CLI mode or when sd-server must (re)start.
	DiffusionResidentBytes uint64
}

// Decision is the outcome and the numbers behind it.
type Decision struct {
	Input
	NeedsOffload bool
	// AvailableBytes and AvailableAfterOffloadBytes are the memory usable now and after
	// stopping the LLM, after the budget.
	AvailableBytes, AvailableAfterOffloadBytes uint64
	// Fits tells whether the image fits once the LLM is stopped (or now, without offload).
	Fits bool
	// NeedBytes is what must be available for the image: the estimate, less what sd-server
	// already holds (server mode), plus headroom.
	NeedBytes uint64
	// KeptBytes is what sd-server keeps resident after the image (server mode; 0 in CLI
	// mode): what it holds now, or the estimate's weights and overhead when more.
	KeptBytes uint64
	// LLMFitsBack tells whether the LLM, when offloaded, fits back beside what sd-server keeps
	// after the image (always true without offload or in CLI mode).
	LLMFitsBack bool
	Explanation string
}

// Decide makes the decision.
func Decide(in Input) Decision {
	d := Numbers(in)
	d.Explanation = explain(d)
	return d
}

// Numbers makes the decision without its sentence (no allocation): placement compares
// many hosts with it.
func Numbers(in Input) Decision {
	d := Decision{Input: in}
	release := uint64(0)
	if in.LLMRunning {
		release = in.LLMReleaseBytes
	}
	d.AvailableBytes = in.FreeBytes
	d.AvailableAfterOffloadBytes = in.FreeBytes + release
	if in.BudgetBytes > 0 {
		d.AvailableBytes = min(d.AvailableBytes, sub(in.BudgetBytes, in.ManagedBytes))
		d.AvailableAfterOffloadBytes = min(d.AvailableAfterOffloadBytes, sub(in.BudgetBytes, sub(in.ManagedBytes, release)))
	}
	need := in.Image.TotalBytes
	d.LLMFitsBack = true
	server := in.DiffusionMode == estimate.ModeServer
	if server {
		need = sub(need, in.DiffusionResidentBytes)
		d.KeptBytes = max(in.DiffusionResidentBytes, in.Image.ResidentBytes())
	}
	need += in.HeadroomBytes
	d.NeedBytes = need
	fitsNow := need <= d.AvailableBytes
	d.NeedsOffload = in.LLMRunning && !fitsNow
	d.Fits = fitsNow || (d.NeedsOffload && need <= d.AvailableAfterOffloadBytes)
	if d.NeedsOffload && server {
		// The LLM ran in what is available now plus its own memory; after the image sd-server
		// keeps KeptBytes − resident more than now.
		d.LLMFitsBack = d.KeptBytes-in.DiffusionResidentBytes <= d.AvailableBytes
	}
	return d
}

func sub(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}

func (d Decision) where() string {
	if d.GPUIndex < 0 {
		return "of RAM"
	}
	return fmt.Sprintf("on GPU %d", d.GPUIndex)
}

func (d Decision) limits() string {
	parts := []string{"headroom " + Bytes(d.HeadroomBytes)}
	if d.BudgetBytes > 0 {
		parts = append(parts, fmt.Sprintf("budget %s with %s used by the engines", Bytes(d.BudgetBytes), Bytes(d.ManagedBytes)))
	}
	if d.ForeignBytes > 0 {
		parts = append(parts, Bytes(d.ForeignBytes)+" used by other processes")
	}
	return strings.Join(parts, ", ")
}

func explain(d Decision) string {
	img := fmt.Sprintf("the image needs %s (%s weights + %s engine + %s for %s",
		Bytes(d.Image.TotalBytes), Bytes(d.Image.WeightsBytes), Bytes(d.Image.OverheadBytes), Bytes(d.Image.ActivationBytes), "its size")
	if d.Image.CorrectionBytes != 0 {
		img += fmt.Sprintf(", %+.0f MiB learnt from past runs", float64(d.Image.CorrectionBytes)/(1<<20))
	}
	img += ")"
	if d.DiffusionMode == estimate.ModeServer && d.DiffusionResidentBytes > 0 {
		img += fmt.Sprintf(", of which sd-server already holds %s, so %s more", Bytes(d.DiffusionResidentBytes), Bytes(sub(d.Image.TotalBytes, d.DiffusionResidentBytes)))
	}
	s := explainOffload(d, img, d.NeedBytes)
	if d.NeedsOffload && !d.LLMFitsBack {
		s += fmt.Sprintf(" After the image sd-server keeps %s resident (%s more than now), which leaves the LLM less than it had: it may not fit back until sd-server is stopped.",
			Bytes(d.KeptBytes), Bytes(d.KeptBytes-d.DiffusionResidentBytes))
	}
	return s
}

func explainOffload(d Decision, img string, need uint64) string {
	switch {
	case !d.NeedsOffload && d.Fits && d.LLMRunning:
		return fmt.Sprintf("No offload: %s and %s is available %s (%s), so the LLM keeps running.",
			img, Bytes(d.AvailableBytes), d.where(), d.limits())
	case !d.NeedsOffload && d.Fits:
		return fmt.Sprintf("No offload: the LLM is not running; %s and %s is available %s (%s).",
			img, Bytes(d.AvailableBytes), d.where(), d.limits())
	case !d.NeedsOffload:
		return fmt.Sprintf("No offload possible: the LLM is not running; %s plus headroom but only %s is available %s (%s), so the generation may run out of memory.",
			img, Bytes(d.AvailableBytes), d.where(), d.limits())
	case d.Fits:
		return fmt.Sprintf("Offload: %s plus headroom but only %s is available %s (%s); stopping the LLM frees %s (%s), which makes %s available.",
			img, Bytes(d.AvailableBytes), d.where(), d.limits(), Bytes(d.LLMReleaseBytes), d.LLMReleaseSource, Bytes(d.AvailableAfterOffloadBytes))
	default:
		return fmt.Sprintf("Offload: %s plus headroom but only %s is available %s (%s); stopping the LLM frees %s (%s), which still leaves only %s, short of %s: offloading anyway to give the image its best chance.",
			img, Bytes(d.AvailableBytes), d.where(), d.limits(), Bytes(d.LLMReleaseBytes), d.LLMReleaseSource, Bytes(d.AvailableAfterOffloadBytes), Bytes(need))
	}
}

// Response renders the decision as the API's WouldNeedOffloadResponse.
func (d Decision) Response() *orchestratorv1.WouldNeedOffloadResponse {
	kind := orchestratorv1.MemoryKind_MEMORY_KIND_VRAM
	if d.GPUIndex < 0 {
		kind = orchestratorv1.MemoryKind_MEMORY_KIND_RAM
	}
	return &orchestratorv1.WouldNeedOffloadResponse{
		NeedsOffload:             d.NeedsOffload,
		Explanation:              d.Explanation,
		MemoryKind:               kind,
		GpuIndex:                 int32(d.GPUIndex),
		RequiredBytes:            d.Image.TotalBytes,
		FreeBytes:                d.FreeBytes,
		LlmReleaseBytes:          d.LLMReleaseBytes,
		HeadroomBytes:            d.HeadroomBytes,
		BudgetBytes:              d.BudgetBytes,
		ForeignBytes:             d.ForeignBytes,
		DiffusionWeightsBytes:    d.Image.WeightsBytes,
		DiffusionActivationBytes: d.Image.ActivationBytes,
		LearnedCorrectionBytes:   d.Image.CorrectionBytes,
		LlmRunning:               d.LLMRunning,
	}
}

// Values are the decision's numbers for an event.
func (d Decision) Values() map[string]float64 {
	return map[string]float64{
		"required_bytes":           float64(d.Image.TotalBytes),
		"free_bytes":               float64(d.FreeBytes),
		"available_bytes":          float64(d.AvailableBytes),
		"available_after_bytes":    float64(d.AvailableAfterOffloadBytes),
		"llm_release_bytes":        float64(d.LLMReleaseBytes),
		"headroom_bytes":           float64(d.HeadroomBytes),
		"budget_bytes":             float64(d.BudgetBytes),
		"managed_bytes":            float64(d.ManagedBytes),
		"foreign_bytes":            float64(d.ForeignBytes),
		"gpu_index":                float64(d.GPUIndex),
		"learned_correction_bytes": float64(d.Image.CorrectionBytes),
		"need_bytes":               float64(d.NeedBytes),
		"diffusion_resident_bytes": float64(d.DiffusionResidentBytes),
		"diffusion_kept_bytes":     float64(d.KeptBytes),
		"needs_offload":            b2f(d.NeedsOffload),
		"fits":                     b2f(d.Fits),
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Bytes formats a byte count for people: "512 MiB", "3.2 GiB".
func Bytes(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

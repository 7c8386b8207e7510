// Package probe gathers what the offload decision needs from the host's services, over
// their gRPC APIs only: memory from the monitor, the LLM's state and configuration from
// the LLM service, the diffusion model from the diffusion service, model metadata from
// their model stores, and the corrections learnt from past runs.
package probe

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	commonv1 "github.com/genailab/genailab/gen/common/v1"
	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	modelsv1 "github.com/genailab/genailab/gen/models/v1"
	monitorv1 "github.com/genailab/genailab/gen/monitor/v1"
	"github.com/genailab/genailab/services/orchestrator/internal/decide"
	"github.com/genailab/genailab/services/orchestrator/internal/estimate"
	"github.com/genailab/genailab/services/orchestrator/internal/state"
)

// Clients are the host's services.
type Clients struct {
	LLM             llmv1.LLMServiceClient
	LLMModels       modelsv1.ModelServiceClient
	Diffusion       diffusionv1.DiffusionServiceClient
	DiffusionModels modelsv1.ModelServiceClient
	Monitor         monitorv1.MonitorServiceClient
}

// Options tune the decision.
type Options struct {
	// HeadroomBytes is kept free on top of the estimate.
	HeadroomBytes uint64
	// BudgetBytes caps what the engines may use together (0: no budget).
	BudgetBytes uint64
	// GPUIndex is the GPU the engines use when the host has GPUs.
	GPUIndex int
	// WeightsFactor and BytesPerPixel tune the diffusion estimate (0: defaults).
	WeightsFactor, BytesPerPixel float64
	// LLMModelsDir, when set, is the LLM service's model directory (models/llm under its
	// data dir) on this machine: the LLM estimate then reads the GGUF file itself with
	// gguf-parser-go instead of estimating from the reported metadata.
	LLMModelsDir string
}

// Prober gathers facts and decides.
type Prober struct {
	c  Clients
	o  Options
	db *state.DB
	// lastModel is the diffusion model of the previous gathering: its size is asked for
	// at once with the services' states (the model rarely changes between images), and
	// asked again only when the diffusion service names another.
	lastModel atomic.Pointer[string]
}

// New returns a prober.
func New(c Clients, o Options, db *state.DB) *Prober { return &Prober{c: c, o: o, db: db} }

// Facts are what a decision was made from, kept for the offload cycle.
type Facts struct {
	// LLM is the LLM service's snapshot.
	LLM *llmv1.LLMInfo
	// DiffusionModel is the diffusion engine's model id ("" when unknown).
	DiffusionModel string
	// Uncorrected is the image estimate before the learnt correction.
	Uncorrected estimate.Diffusion
	// GPUIndex is the GPU compared, -1 for RAM.
	GPUIndex int
}

// Running reports whether the LLM is running (or starting) and so holds memory.
func Running(info *llmv1.LLMInfo) bool {
	switch info.GetStatus() {
	case commonv1.ServerStatus_SERVER_STATUS_RUNNING, commonv1.ServerStatus_SERVER_STATUS_STARTING:
		return true
	}
	return false
}

// GatherAndDecide gathers the facts for an image of width × height and hands them to the pure
// decide.Decide.
func (p *Prober) GatherAndDecide(ctx context.Context, width, height int) (decide.Decision, Facts, error) {
	return p.GatherAndDecideImage(ctx, Image{Width: width, Height: height})
}

// GatherAndDecideImage is GatherAndDecide for a whole request: the batch, an edit and
// full-size previews count in the estimate, and a request the engine's mode cannot run
// fails with ErrUnsupported before anything is decided (nothing is offloaded for it).
func (p *Prober) GatherAndDecideImage(ctx context.Context, img Image) (decide.Decision, Facts, error) {
	width, height := img.Width, img.Height
	var f Facts
	// The three services (and the diffusion model's store) are asked at once: each answer
	// is a loopback round trip on the image's path (about 0.2–1 ms each on the 2-core CI
	// machine, one after another before).
	// Their errors are reported in this order, whichever came first.
	var (
		usage            *monitorv1.GetUsageResponse
		li               *llmv1.GetInfoResponse
		di               *diffusionv1.GetInfoResponse
		uerr, lerr, derr error
		wg               sync.WaitGroup
	)
	wg.Go(func() { usage, uerr = p.c.Monitor.GetUsage(ctx, &monitorv1.GetUsageRequest{}) })
	wg.Go(func() { li, lerr = p.c.LLM.GetInfo(ctx, &llmv1.GetInfoRequest{}) })
	// The size of the model the engine had last time, asked for meanwhile: used only if the
	// engine still has it, so a changed model costs one more round trip, never a stale size.
	var (
		guess      string
		guessBytes uint64
	)
	if last := p.lastModel.Load(); last != nil && p.c.DiffusionModels != nil {
		guess = *last
		wg.Go(func() { guessBytes = p.modelBytes(ctx, guess) })
	}
	di, derr = p.c.Diffusion.GetInfo(ctx, &diffusionv1.GetInfoRequest{})
	wg.Wait()
	switch {
	case uerr != nil:
		return decide.Decision{}, f, fmt.Errorf("ask the monitor for memory usage: %w", uerr)
	case lerr != nil:
		return decide.Decision{}, f, fmt.Errorf("ask the LLM service for its state: %w", lerr)
	case derr != nil:
		return decide.Decision{}, f, fmt.Errorf("ask the diffusion service for its state: %w", derr)
	}
	f.LLM = li.GetInfo()
	if err := Supports(di.GetInfo(), img); err != nil {
		return decide.Decision{}, f, err
	}
	f.DiffusionModel = di.GetInfo().GetModelId()
	if f.DiffusionModel == "" {
		f.DiffusionModel = di.GetInfo().GetConfig().GetModelId()
	}
	var components uint64
	switch {
	case f.DiffusionModel == "" || p.c.DiffusionModels == nil:
	case f.DiffusionModel == guess:
		components = guessBytes
	default:
		components = p.modelBytes(ctx, f.DiffusionModel)
	}
	if f.DiffusionModel != "" {
		p.lastModel.Store(&f.DiffusionModel)
	}
	mode := DiffusionMode(di.GetInfo())
	dp := estimate.DiffusionParams{ComponentBytes: components, Width: width, Height: height, Mode: mode, WeightsFactor: p.o.WeightsFactor, BytesPerPixel: p.o.BytesPerPixel,
		Images: img.N, Edit: img.Edit, DecodedPreviews: img.Preview == "tae" || img.Preview == "vae"}
	f.Uncorrected = estimate.EstimateDiffusion(dp)
	if f.DiffusionModel != "" {
		if c, err := p.db.Correction(f.DiffusionModel); err == nil {
			dp.CorrectionBytes = int64(c.DeltaBytes)
		}
	}
	in := decide.Input{
		Image:         estimate.EstimateDiffusion(dp),
		LLMRunning:    Running(f.LLM),
		HeadroomBytes: p.o.HeadroomBytes,
		BudgetBytes:   p.o.BudgetBytes,
		DiffusionMode: mode,
	}
	gpu := PickGPU(usage.GetUsage().GetGpus(), p.o.GPUIndex)
	if ServerResident(di.GetInfo(), f.DiffusionModel) {
		gi := -1
		if gpu != nil {
			gi = int(gpu.GetIndex())
		}
		in.DiffusionResidentBytes = DiffusionMemory(usage.GetUsage(), gi)
	}
	pid := f.LLM.GetPid()
	if gpu == nil {
		f.GPUIndex, in.GPUIndex = -1, -1
		mem := usage.GetUsage().GetMemory()
		in.FreeBytes = mem.GetAvailableBytes()
		for _, mp := range usage.GetUsage().GetManagedProcesses() {
			in.ManagedBytes += mp.GetRssBytes()
		}
		in.ForeignBytes = sat(mem.GetUsedBytes(), in.ManagedBytes)
		if rss, ok := LLMResident(usage.GetUsage(), pid); ok && in.LLMRunning {
			in.LLMReleaseBytes, in.LLMReleaseSource = rss, "measured RSS"
		}
	} else {
		f.GPUIndex, in.GPUIndex = int(gpu.GetIndex()), int(gpu.GetIndex())
		in.FreeBytes = gpu.GetMemoryFreeBytes()
		in.ManagedBytes = gpu.GetManagedMemoryBytes()
		in.ForeignBytes = gpu.GetForeignMemoryBytes()
		if in.LLMRunning && pid > 0 {
			for _, gp := range gpu.GetProcesses() {
				if gp.GetPid() == pid {
					in.LLMReleaseBytes += gp.GetUsedMemoryBytes()
					in.LLMReleaseSource = "measured by NVML"
				}
			}
		}
	}
	if in.LLMRunning && in.LLMReleaseSource == "" {
		est, err := p.estimateLLM(ctx, f.LLM, gpu == nil)
		if err == nil {
			in.LLMReleaseBytes, in.LLMReleaseSource = est.VRAMBytes, "estimated with "+est.Source
			if gpu == nil {
				in.LLMReleaseBytes = est.RAMBytes
			}
		} else {
			in.LLMReleaseSource = "unknown: " + err.Error()
		}
	}
	return decide.Decide(in), f, nil
}

// modelBytes is the size of the diffusion model id in its store, 0 when it cannot be told
// (the estimate then counts no weights, as before the store knew the model).
func (p *Prober) modelBytes(ctx context.Context, id string) uint64 {
	m, err := p.c.DiffusionModels.GetModel(ctx, &modelsv1.GetModelRequest{Type: modelsv1.ModelType_MODEL_TYPE_DIFFUSION, Id: id})
	if err != nil {
		return 0
	}
	return m.GetModel().GetSizeBytes()
}

// estimateLLM estimates the running LLM's memory from its model.
func (p *Prober) estimateLLM(ctx context.Context, info *llmv1.LLMInfo, noGPU bool) (estimate.LLM, error) {
	cfg := info.GetConfig()
	run := estimate.LLMRun{
		ContextSize: int(cfg.GetContextSize()), GPULayers: int(cfg.GetGpuLayers()),
		CacheTypeK: cfg.GetCacheTypeK(), CacheTypeV: cfg.GetCacheTypeV(),
		FlashAttention: cfg.GetFlashAttention() == llmv1.FlashAttention_FLASH_ATTENTION_ON,
		Parallel:       int(cfg.GetParallelSlots()), NoGPU: noGPU,
	}
	if cfg.GpuLayers == nil {
		run.GPULayers = -1
	}
	model := info.GetModelId()
	if model == "" {
		model = cfg.GetModelId()
	}
	if model == "" || p.c.LLMModels == nil {
		return estimate.LLM{}, errors.New("the LLM's model is not known")
	}
	m, err := p.c.LLMModels.GetModel(ctx, &modelsv1.GetModelRequest{Type: modelsv1.ModelType_MODEL_TYPE_LLM, Id: model})
	if err != nil {
		return estimate.LLM{}, fmt.Errorf("get LLM model %q: %w", model, err)
	}
	if files := m.GetModel().GetFiles(); p.o.LLMModelsDir != "" && len(files) > 0 {
		// The first file is the model (or its first shard). Ids and file names come from
		// the store's records, which never hold separators; Base keeps it so even if they did.
		path := filepath.Join(p.o.LLMModelsDir, filepath.Base(model), filepath.Base(files[0].GetName()))
		if _, err := os.Stat(path); err == nil {
			if est, err := estimate.LLMFromFile(path, run); err == nil {
				return est, nil
			}
		}
	}
	return estimate.LLMFromMetadata(m.GetModel().GetGguf(), run)
}

// PickGPU returns the GPU with the wanted index, else the first; nil when there are none.
func PickGPU(gpus []*monitorv1.GPUInfo, index int) *monitorv1.GPUInfo {
	for _, g := range gpus {
		if int(g.GetIndex()) == index {
			return g
		}
	}
	if len(gpus) > 0 {
		return gpus[0]
	}
	return nil
}

// LLMResident returns the resident memory of the LLM's process (pid) as the monitor sees
// it, and whether the monitor lists it at all (among managed processes or on a GPU).
func LLMResident(u *monitorv1.Usage, pid int32) (uint64, bool) {
	if pid <= 0 {
		return 0, false
	}
	for _, mp := range u.GetManagedProcesses() {
		if mp.GetPid() == pid {
			return mp.GetRssBytes(), true
		}
	}
	for _, g := range u.GetGpus() {
		for _, gp := range g.GetProcesses() {
			if gp.GetPid() == pid {
				return 0, true
			}
		}
	}
	return 0, false
}

// DiffusionMode is the diffusion engine's mode (CLI unless it is configured for server).
func DiffusionMode(info *diffusionv1.DiffusionInfo) estimate.EngineMode {
	if info.GetConfig().GetMode() == diffusionv1.EngineMode_ENGINE_MODE_SERVER {
		return estimate.ModeServer
	}
	return estimate.ModeCLI
}

// ServerResident tells whether the diffusion engine is a running sd-server with model
// loaded: what its process holds is then part of the image's peak already in use.
func ServerResident(info *diffusionv1.DiffusionInfo, model string) bool {
	return DiffusionMode(info) == estimate.ModeServer && model != "" && info.GetModelId() == model &&
		info.GetStatus() == commonv1.ServerStatus_SERVER_STATUS_RUNNING
}

// DiffusionMemory returns what the diffusion engine's processes use now: GPU memory on
// the given GPU, or resident memory when gpu is -1.
func DiffusionMemory(u *monitorv1.Usage, gpu int) uint64 {
	var n uint64
	for _, mp := range u.GetManagedProcesses() {
		if mp.GetRole() != "diffusion" {
			continue
		}
		if gpu < 0 {
			n += mp.GetRssBytes()
		} else {
			n += mp.GetGpuMemoryBytes()
		}
	}
	return n
}

func sat(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}

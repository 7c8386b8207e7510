package probe_test

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	commonv1 "github.com/genailab/genailab/gen/common/v1"
	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	modelsv1 "github.com/genailab/genailab/gen/models/v1"
	monitorv1 "github.com/genailab/genailab/gen/monitor/v1"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/services/orchestrator/internal/estimate"
	"github.com/genailab/genailab/services/orchestrator/internal/probe"
	"github.com/genailab/genailab/services/orchestrator/internal/state"
)

const GiB = 1 << 30

// host doubles the services of a GPU host over real gRPC: two GPUs, the LLM (pid 42) on
// GPU 1 with 6 GiB, a foreign process on GPU 1, a 4 GiB diffusion model.
type host struct {
	noNVMLPs bool // NVML lists no processes (some drivers in containers)
	// server runs the diffusion engine in server mode: a running sd-server (pid 9) with the
	// model, holding 4 GiB + 50 MiB of GPU memory and 300 MiB of RAM.
	server bool
	// model is the diffusion engine's model when set ("sdxl" otherwise); modelSizes are
	// the store's sizes.
	model atomic.Pointer[string]
	// asked, when set, receives the id of every diffusion model size asked for; with
	// awaitAsk, the diffusion service's GetInfo answers only once one was.
	asked    chan string
	awaitAsk atomic.Bool
}

var modelSizes = map[string]uint64{"sdxl": 4 * GiB, "flux": 12 * GiB}

func (h *host) diffusionModel() string {
	if m := h.model.Load(); m != nil {
		return *m
	}
	return "sdxl"
}

type llmSrv struct {
	llmv1.UnimplementedLLMServiceServer
}

type monSrv struct {
	monitorv1.UnimplementedMonitorServiceServer
	*host
}

func (llmSrv) GetInfo(context.Context, *llmv1.GetInfoRequest) (*llmv1.GetInfoResponse, error) {
	return &llmv1.GetInfoResponse{Info: &llmv1.LLMInfo{Status: commonv1.ServerStatus_SERVER_STATUS_RUNNING, Pid: 42, ModelId: "llama",
		Config: &llmv1.LLMConfig{ModelId: "llama", ContextSize: 4096, GpuLayers: proto.Int32(-1)}}}, nil
}

func (h monSrv) GetUsage(context.Context, *monitorv1.GetUsageRequest) (*monitorv1.GetUsageResponse, error) {
	gpu1 := &monitorv1.GPUInfo{Index: 1, MemoryTotalBytes: 24 * GiB, MemoryUsedBytes: 9 * GiB, MemoryFreeBytes: 15 * GiB,
		ManagedMemoryBytes: 6 * GiB, ForeignMemoryBytes: 3 * GiB}
	if !h.noNVMLPs {
		gpu1.Processes = []*monitorv1.GPUProcess{{Pid: 42, Name: "llama-server", UsedMemoryBytes: 6 * GiB, Managed: true}, {Pid: 7, Name: "game", UsedMemoryBytes: 3 * GiB}}
	}
	u := &monitorv1.Usage{
		Memory: &monitorv1.MemoryInfo{AvailableBytes: 50 * GiB},
		Gpus:   []*monitorv1.GPUInfo{{Index: 0, MemoryTotalBytes: 8 * GiB, MemoryFreeBytes: 8 * GiB}, gpu1},
	}
	if h.server {
		u.ManagedProcesses = []*monitorv1.ManagedProcess{{Pid: 9, Name: "sd-server", Role: "diffusion", RssBytes: 300 << 20, GpuMemoryBytes: 4*GiB + 50<<20}}
	}
	return &monitorv1.GetUsageResponse{Usage: u}, nil
}

type diffusion struct {
	diffusionv1.UnimplementedDiffusionServiceServer
	*host
}

func (d diffusion) GetInfo(ctx context.Context, _ *diffusionv1.GetInfoRequest) (*diffusionv1.GetInfoResponse, error) {
	if d.awaitAsk.Load() {
		select {
		case <-d.asked:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if m := d.diffusionModel(); m != "sdxl" {
		return &diffusionv1.GetInfoResponse{Info: &diffusionv1.DiffusionInfo{ModelId: m}}, nil
	}
	if d.server {
		return &diffusionv1.GetInfoResponse{Info: &diffusionv1.DiffusionInfo{ModelId: "sdxl", Status: commonv1.ServerStatus_SERVER_STATUS_RUNNING, Pid: 9,
			Config: &diffusionv1.DiffusionConfig{Mode: diffusionv1.EngineMode_ENGINE_MODE_SERVER, ModelId: "sdxl"}}}, nil
	}
	return &diffusionv1.GetInfoResponse{Info: &diffusionv1.DiffusionInfo{ModelId: "sdxl"}}, nil
}

type models struct {
	modelsv1.UnimplementedModelServiceServer
	*host
}

func (m models) GetModel(_ context.Context, r *modelsv1.GetModelRequest) (*modelsv1.GetModelResponse, error) {
	if r.Type == modelsv1.ModelType_MODEL_TYPE_DIFFUSION {
		if m.asked != nil {
			m.asked <- r.Id
		}
		return &modelsv1.GetModelResponse{Model: &modelsv1.Model{Id: r.Id, SizeBytes: modelSizes[r.Id]}}, nil
	}
	return &modelsv1.GetModelResponse{Model: &modelsv1.Model{Id: r.Id, Gguf: &modelsv1.GGUFMetadata{
		BlockCount: 32, EmbeddingLength: 4096, HeadCount: 32, HeadCountKv: 8, ContextLength: 8192, VocabSize: 128256, TensorDataSizeBytes: 5 * GiB,
	}}}, nil
}

func newProber(t *testing.T, h *host, o probe.Options) (*probe.Prober, *state.DB) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	llmv1.RegisterLLMServiceServer(gs, llmSrv{})
	monitorv1.RegisterMonitorServiceServer(gs, monSrv{host: h})
	diffusionv1.RegisterDiffusionServiceServer(gs, diffusion{host: h})
	modelsv1.RegisterModelServiceServer(gs, models{host: h})
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	db, err := state.Open(filepath.Join(t.TempDir(), "o.db"), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	m := modelsv1.NewModelServiceClient(cc)
	return probe.New(probe.Clients{LLM: llmv1.NewLLMServiceClient(cc), LLMModels: m, Diffusion: diffusionv1.NewDiffusionServiceClient(cc),
		DiffusionModels: m, Monitor: monitorv1.NewMonitorServiceClient(cc)}, o, db), db
}

func TestGPUDecisionUsesNVMLNumbersOfTheEnginesGPU(t *testing.T) {
	p, db := newProber(t, &host{}, probe.Options{GPUIndex: 1, HeadroomBytes: GiB})
	// 4 GiB × 1.0 + 40 MiB + 1024² × 1936 B ≈ 5.9 GiB; + 1 GiB headroom ≤ 15 GiB free.
	d, f, err := p.GatherAndDecide(context.Background(), 1024, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if d.NeedsOffload || d.GPUIndex != 1 || f.GPUIndex != 1 || d.FreeBytes != 15*GiB || d.ForeignBytes != 3*GiB ||
		d.LLMReleaseBytes != 6*GiB || d.LLMReleaseSource != "measured by NVML" || f.DiffusionModel != "sdxl" {
		t.Fatalf("decision %+v", d)
	}
	r := d.Response()
	if r.MemoryKind != orchestratorv1.MemoryKind_MEMORY_KIND_VRAM || r.DiffusionWeightsBytes != weights4 || r.DiffusionActivationBytes != 1024*1024*estimate.DefaultBytesPerPixel {
		t.Fatalf("response %v", r)
	}
	// A budget of 10 GiB with 6 GiB used by the engines leaves 4: offload, which frees 6.
	p2, _ := newProber(t, &host{}, probe.Options{GPUIndex: 1, HeadroomBytes: GiB, BudgetBytes: 10 * GiB})
	d, _, _ = p2.GatherAndDecide(context.Background(), 1024, 1024)
	if !d.NeedsOffload || !d.Fits || d.AvailableBytes != 4*GiB || d.AvailableAfterOffloadBytes != 10*GiB {
		t.Fatalf("budgeted decision %+v: %s", d, d.Explanation)
	}
	// A learnt correction is applied.
	if err := db.UpdateCorrection("sdxl", func(c state.Correction) state.Correction { return state.Correction{DeltaBytes: GiB, Samples: 1} }); err != nil {
		t.Fatal(err)
	}
	d, f, _ = p.GatherAndDecide(context.Background(), 1024, 1024)
	if d.Image.CorrectionBytes != GiB || d.Image.TotalBytes != f.Uncorrected.TotalBytes+GiB {
		t.Fatalf("corrected %+v uncorrected %+v", d.Image, f.Uncorrected)
	}
}

func TestLLMReleaseEstimatedWhenNVMLListsNoProcesses(t *testing.T) {
	p, _ := newProber(t, &host{noNVMLPs: true}, probe.Options{GPUIndex: 1})
	d, _, err := p.GatherAndDecide(context.Background(), 512, 512)
	if err != nil {
		t.Fatal(err)
	}
	// Estimated from the GGUF metadata: 5 GiB of weights all on the GPU, plus the KV cache
	// 32 layers × 8 KV heads × (128+128) × 4096 × 2 B = 512 MiB, plus compute buffers.
	if !strings.HasPrefix(d.LLMReleaseSource, "estimated with gguf-metadata") || d.LLMReleaseBytes < 5*GiB+512<<20 || d.LLMReleaseBytes > 7*GiB {
		t.Fatalf("release %d (%s)", d.LLMReleaseBytes, d.LLMReleaseSource)
	}
}

// weights4 is 4 GiB × the default factor, as the estimate computes it.
var weights4 = func() uint64 { f := float64(4 * GiB); return uint64(f * estimate.DefaultWeightsFactor) }()

func TestServerModeCountsTheResidentSDServer(t *testing.T) {
	// The same GPU host, once in CLI mode and once with sd-server running with the model.
	o := probe.Options{GPUIndex: 1, HeadroomBytes: GiB}
	cli, _ := newProber(t, &host{}, o)
	srv, _ := newProber(t, &host{server: true}, o)
	dc, fc, err := cli.GatherAndDecide(context.Background(), 512, 512)
	if err != nil {
		t.Fatal(err)
	}
	ds, fs, err := srv.GatherAndDecide(context.Background(), 512, 512)
	if err != nil {
		t.Fatal(err)
	}
	if dc.DiffusionMode != estimate.ModeCLI || dc.DiffusionResidentBytes != 0 || fc.Uncorrected.OverheadBytes != estimate.DefaultCLIOverheadBytes {
		t.Fatalf("cli mode: %+v", dc)
	}
	if ds.DiffusionMode != estimate.ModeServer || ds.DiffusionResidentBytes != 4*GiB+50<<20 || fs.Uncorrected.OverheadBytes != estimate.DefaultServerOverheadBytes {
		t.Fatalf("server mode: %+v", ds)
	}
	// Only the size term (512² × 1936 B ≈ 484 MiB) and headroom are needed beside sd-server.
	if want := ds.Image.TotalBytes - ds.DiffusionResidentBytes + GiB; ds.NeedBytes != want || ds.NeedBytes >= dc.NeedBytes {
		t.Fatalf("need %d, want %d (cli %d)", ds.NeedBytes, want, dc.NeedBytes)
	}
	if !strings.Contains(ds.Explanation, "sd-server already holds") {
		t.Fatalf("sentence: %s", ds.Explanation)
	}
}

// TestDiffusionModelSizeAskedWithTheStates: from the second gathering on, the size of the
// model the engine had last time is asked for while the services are (the diffusion
// service here answers only once it was), and a model changed in between is sized anew.
func TestDiffusionModelSizeAskedWithTheStates(t *testing.T) {
	h := &host{asked: make(chan string, 8)}
	p, _ := newProber(t, h, probe.Options{GPUIndex: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	weights := func(want string) {
		t.Helper()
		_, f, err := p.GatherAndDecide(ctx, 512, 512)
		if err != nil {
			t.Fatal(err)
		}
		if w := float64(modelSizes[want]) * estimate.DefaultWeightsFactor; f.DiffusionModel != want || f.Uncorrected.WeightsBytes != uint64(w) {
			t.Fatalf("model %q, weights %d: want %q, %d", f.DiffusionModel, f.Uncorrected.WeightsBytes, want, uint64(w))
		}
	}
	asked := func(want ...string) {
		t.Helper()
		for _, w := range want {
			if got := <-h.asked; got != w {
				t.Fatalf("size asked for %q, want %q", got, w)
			}
		}
		if len(h.asked) != 0 {
			t.Fatalf("%d more sizes asked for", len(h.asked))
		}
	}
	weights("sdxl") // nothing known yet: asked after the diffusion service's answer
	asked("sdxl")
	h.awaitAsk.Store(true)
	weights("sdxl") // the guess is right: its answer is used (GetInfo received it first)
	h.awaitAsk.Store(false)
	asked()
	flux := "flux"
	h.model.Store(&flux)
	weights("flux") // the guess is wrong: the new model is asked for
	asked("sdxl", "flux")
	weights("flux")
	asked("flux")
}

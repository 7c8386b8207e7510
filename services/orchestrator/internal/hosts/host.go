package hosts

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/genailab/genailab/gen/common/v1"
	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	modelsv1 "github.com/genailab/genailab/gen/models/v1"
	monitorv1 "github.com/genailab/genailab/gen/monitor/v1"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/services/orchestrator/internal/cycle"
	"github.com/genailab/genailab/services/orchestrator/internal/probe"
)

// Host is one host: its clients, its offload cycle, its state and its cached telemetry.
type Host struct {
	Spec Spec
	// Clients are its services; Prober and Cycle run images on it.
	Clients probe.Clients
	Prober  *probe.Prober
	Cycle   *cycle.Cycle

	conns  []*grpc.ClientConn
	health [3]healthpb.HealthClient
	poke   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}

	mu        sync.Mutex
	checked   bool // one health check has completed
	reachable bool
	draining  bool
	reason    string
	busy      int // images (and LLM reloads) running on it
	tel       telemetry
}

// telemetry is what the host last told the orchestrator.
type telemetry struct {
	usage     *monitorv1.Usage
	usageAt   time.Time
	llm       *llmv1.LLMInfo
	diffusion *diffusionv1.DiffusionInfo
	// models are the diffusion models installed there, with their sizes.
	models map[string]uint64
}

func dialHost(sp Spec, dial []grpc.DialOption) (*Host, error) {
	h := &Host{Spec: sp, poke: make(chan struct{}, 1), done: make(chan struct{})}
	conn := func(what, addr string) (*grpc.ClientConn, error) {
		cc, err := grpc.NewClient(addr, dial...)
		if err != nil {
			h.close()
			return nil, fmt.Errorf("host %s: dial %s service %s: %w", sp.Name, what, addr, err)
		}
		h.conns = append(h.conns, cc)
		return cc, nil
	}
	lcc, err := conn("LLM", sp.LLMAddr)
	if err != nil {
		return nil, err
	}
	dcc, err := conn("diffusion", sp.DiffusionAddr)
	if err != nil {
		return nil, err
	}
	mcc, err := conn("monitor", sp.MonitorAddr)
	if err != nil {
		return nil, err
	}
	h.Clients = probe.Clients{
		LLM: llmv1.NewLLMServiceClient(lcc), LLMModels: modelsv1.NewModelServiceClient(lcc),
		Diffusion: diffusionv1.NewDiffusionServiceClient(dcc), DiffusionModels: modelsv1.NewModelServiceClient(dcc),
		Monitor: monitorv1.NewMonitorServiceClient(mcc),
	}
	h.health = [3]healthpb.HealthClient{healthpb.NewHealthClient(lcc), healthpb.NewHealthClient(dcc), healthpb.NewHealthClient(mcc)}
	return h, nil
}

func (h *Host) close() {
	for _, c := range h.conns {
		_ = c.Close()
	}
}

// Name is the host's name.
func (h *Host) Name() string { return h.Spec.Name }

// State returns the host's state and why.
func (h *Host) State() (orchestratorv1.HostState, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.stateLocked()
}

func (h *Host) stateLocked() (orchestratorv1.HostState, string) {
	switch {
	case h.draining:
		return orchestratorv1.HostState_HOST_STATE_DRAINING, "drained by an operator"
	case !h.checked:
		return orchestratorv1.HostState_HOST_STATE_UNREACHABLE, "not checked yet"
	case !h.reachable:
		return orchestratorv1.HostState_HOST_STATE_UNREACHABLE, h.reason
	}
	return orchestratorv1.HostState_HOST_STATE_READY, ""
}

// Refresh asks the host's loop for a health check and fresh telemetry now.
func (h *Host) Refresh() {
	select {
	case h.poke <- struct{}{}:
	default:
	}
}

// checkOnce checks the three services' health and, when they answer, refreshes the LLM's
// and the diffusion engine's state and the list of diffusion models. It returns whether
// the host is reachable.
func (h *Host) checkOnce(ctx context.Context, timeout time.Duration, refreshModels bool) (bool, string) {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// The three checks run together, every one each time: each is traffic on its
	// connection, which the connection's keepalive timeout needs to close a connection
	// whose link went down (and fail its streams) without waiting for a keepalive ping.
	names := [3]string{"LLM", "diffusion", "monitor"}
	var problems [3]string
	var wg sync.WaitGroup
	for i, hc := range h.health {
		wg.Go(func() {
			r, err := hc.Check(cctx, &healthpb.HealthCheckRequest{})
			switch {
			case err != nil:
				problems[i] = fmt.Sprintf("%s service: %v", names[i], err)
			case r.GetStatus() != healthpb.HealthCheckResponse_SERVING:
				problems[i] = fmt.Sprintf("%s service is %s", names[i], r.GetStatus())
			}
		})
	}
	wg.Wait()
	for _, p := range problems {
		if p != "" {
			return false, p
		}
	}
	li, err := h.Clients.LLM.GetInfo(cctx, &llmv1.GetInfoRequest{})
	if err != nil {
		return false, fmt.Sprintf("LLM service: %v", err)
	}
	di, err := h.Clients.Diffusion.GetInfo(cctx, &diffusionv1.GetInfoRequest{})
	if err != nil {
		return false, fmt.Sprintf("diffusion service: %v", err)
	}
	var models map[string]uint64
	if refreshModels {
		ml, err := h.Clients.DiffusionModels.ListModels(cctx, &modelsv1.ListModelsRequest{Type: modelsv1.ModelType_MODEL_TYPE_DIFFUSION})
		if err != nil {
			return false, fmt.Sprintf("diffusion models: %v", err)
		}
		models = make(map[string]uint64, len(ml.GetModels()))
		for _, m := range ml.GetModels() {
			models[m.GetId()] = m.GetSizeBytes()
		}
	}
	h.mu.Lock()
	h.tel.llm, h.tel.diffusion = li.GetInfo(), di.GetInfo()
	if models != nil {
		h.tel.models = models
	}
	h.mu.Unlock()
	return true, ""
}

// followUsage keeps the latest monitor reading, reconnecting with backoff.
func (h *Host) followUsage(ctx context.Context, every time.Duration, log *slog.Logger) {
	backoff := 500 * time.Millisecond
	for ctx.Err() == nil {
		start := time.Now()
		err := h.usageOnce(ctx, every)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > 10*time.Second {
			backoff = 500 * time.Millisecond
		}
		log.Debug("usage stream ended; reconnecting", "host", h.Name(), "error", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

func (h *Host) usageOnce(ctx context.Context, every time.Duration) error {
	stream, err := h.Clients.Monitor.WatchUsage(ctx, &monitorv1.WatchUsageRequest{IntervalMs: every.Milliseconds()})
	if err != nil {
		return err
	}
	for {
		m, err := stream.Recv()
		if err != nil {
			return err
		}
		h.mu.Lock()
		h.tel.usage, h.tel.usageAt = m.GetUsage(), time.Now()
		h.mu.Unlock()
	}
}

// view renders the host for ListHosts.
func (h *Host) view(queued int, offloaded bool, gpuIndex int) *orchestratorv1.Host {
	h.mu.Lock()
	defer h.mu.Unlock()
	st, why := h.stateLocked()
	v := &orchestratorv1.Host{
		Name: h.Spec.Name, State: st, StateReason: why,
		LlmAddr: h.Spec.LLMAddr, DiffusionAddr: h.Spec.DiffusionAddr, MonitorAddr: h.Spec.MonitorAddr,
		RunningJobs: int32(h.busy), QueuedJobs: int32(queued), LlmOffloaded: offloaded,
	}
	if u := h.tel.usage; u != nil {
		for _, g := range u.GetGpus() {
			v.Gpus = append(v.Gpus, &orchestratorv1.HostGPU{Index: g.GetIndex(), Name: g.GetName(), MemoryTotalBytes: g.GetMemoryTotalBytes(), MemoryFreeBytes: g.GetMemoryFreeBytes()})
		}
		v.TelemetryAt = timestamppb.New(h.tel.usageAt)
	}
	v.FreeBytes = h.freeLocked(gpuIndex)
	if li := h.tel.llm; li != nil && probe.Running(li) {
		v.LlmRunning, v.LlmModel = true, li.GetModelId()
	}
	if di := h.tel.diffusion; di != nil && di.GetStatus() == commonv1.ServerStatus_SERVER_STATUS_RUNNING {
		v.DiffusionModel = di.GetModelId()
	}
	for id := range h.tel.models {
		v.DiffusionModels = append(v.DiffusionModels, id)
	}
	sortStrings(v.DiffusionModels)
	return v
}

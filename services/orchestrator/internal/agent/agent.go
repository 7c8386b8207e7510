// Package agent is the orchestrator's side of one host: the connections to its LLM,
// diffusion and monitor services, their grpc health, the telemetry they last reported
// (the monitor's WatchUsage stream, the engines' state, the installed diffusion models)
// and the host's state (ready, unreachable, draining). It reads and renders that state;
// what runs on the host (offload cycles, reloads, placement) is composed elsewhere.
package agent

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
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
	"github.com/genailab/genailab/pkg/grpcserver"
	"github.com/genailab/genailab/services/orchestrator/internal/place"
	"github.com/genailab/genailab/services/orchestrator/internal/probe"
)

// Agent is one host: its clients, its health and its cached telemetry.
type Agent struct {
	Spec Spec
	// Clients are its services.
	Clients probe.Clients

	conns  []*grpc.ClientConn
	health [3]healthpb.HealthClient
	poke   chan struct{}

	mu        sync.Mutex
	checked   bool // one health check has completed
	checkedAt time.Time
	reachable bool
	draining  bool
	reason    string
	tel       telemetry
}

// telemetry is what the host last told the orchestrator.
type telemetry struct {
	usage     *monitorv1.Usage
	usageAt   time.Time
	llm       *llmv1.LLMInfo
	diffusion *diffusionv1.DiffusionInfo
	// caps are the diffusion engine's capabilities in its mode (nil: not reported).
	caps *place.Capabilities
	// models are the diffusion models installed there, with their sizes.
	models map[string]uint64
}

// Dial connects to the host's three services (grpc connects lazily: nothing waits here).
func Dial(sp Spec, dial []grpc.DialOption) (*Agent, error) {
	a := &Agent{Spec: sp, poke: make(chan struct{}, 1)}
	conn := func(what, addr string) (*grpc.ClientConn, error) {
		// A batch of images is one answer, an edit's uploads one request: over gRPC's defaults.
		cc, err := grpc.NewClient(addr, append(dial[:len(dial):len(dial)], grpcserver.CallOptions())...)
		if err != nil {
			a.Close()
			return nil, fmt.Errorf("host %s: dial %s service %s: %w", sp.Name, what, addr, err)
		}
		a.conns = append(a.conns, cc)
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
	a.Clients = probe.Clients{
		LLM: llmv1.NewLLMServiceClient(lcc), LLMModels: modelsv1.NewModelServiceClient(lcc),
		Diffusion: diffusionv1.NewDiffusionServiceClient(dcc), DiffusionModels: modelsv1.NewModelServiceClient(dcc),
		Monitor: monitorv1.NewMonitorServiceClient(mcc),
	}
	a.health = [3]healthpb.HealthClient{healthpb.NewHealthClient(lcc), healthpb.NewHealthClient(dcc), healthpb.NewHealthClient(mcc)}
	return a, nil
}

// Close closes the host's connections.
func (a *Agent) Close() {
	for _, c := range a.conns {
		_ = c.Close()
	}
}

// Name is the host's name.
func (a *Agent) Name() string { return a.Spec.Name }

// State returns the host's state and why.
func (a *Agent) State() (orchestratorv1.HostState, string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.stateLocked()
}

func (a *Agent) stateLocked() (orchestratorv1.HostState, string) {
	switch {
	case a.draining:
		return orchestratorv1.HostState_HOST_STATE_DRAINING, "drained by an operator"
	case !a.checked:
		return orchestratorv1.HostState_HOST_STATE_UNREACHABLE, "not checked yet"
	case !a.reachable:
		return orchestratorv1.HostState_HOST_STATE_UNREACHABLE, a.reason
	}
	return orchestratorv1.HostState_HOST_STATE_READY, ""
}

// Refresh asks whoever runs the host's health checks for one now (Poked).
func (a *Agent) Refresh() {
	select {
	case a.poke <- struct{}{}:
	default:
	}
}

// Poked receives once after each Refresh (several coalesce).
func (a *Agent) Poked() <-chan struct{} { return a.poke }

// SetDraining drains (or undrains) the host: a draining host takes no new image.
func (a *Agent) SetDraining(draining bool) {
	a.mu.Lock()
	a.draining = draining
	a.mu.Unlock()
}

// Reachable reports whether the last health check reached the host.
func (a *Agent) Reachable() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.checked && a.reachable
}

// RecordHealth records a health check's result; changed tells whether the host's state
// (or the reason it is unreachable) changed, was whether it was reachable before.
func (a *Agent) RecordHealth(ok bool, why string) (was, changed bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	was = a.checked && a.reachable
	changed = !a.checked || a.reachable != ok || (!ok && a.reason != why)
	a.checked, a.reachable, a.checkedAt = true, ok, time.Now()
	if !ok {
		a.reason = why
	}
	return was, changed
}

// Check checks the three services' health and, when they answer, refreshes the LLM's
// and the diffusion engine's state and (with refreshModels) the list of diffusion models.
// It returns whether the host is reachable, and why not; RecordHealth records that.
func (a *Agent) Check(ctx context.Context, timeout time.Duration, refreshModels bool) (bool, string) {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// The three checks run together, every one each time: each is traffic on its
	// connection, which the connection's keepalive timeout needs to close a connection
	// whose link went down (and fail its streams) without waiting for a keepalive ping.
	names := [3]string{"LLM", "diffusion", "monitor"}
	var problems [3]string
	var wg sync.WaitGroup
	for i, hc := range a.health {
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
	li, err := a.Clients.LLM.GetInfo(cctx, &llmv1.GetInfoRequest{})
	if err != nil {
		return false, fmt.Sprintf("LLM service: %v", err)
	}
	di, err := a.Clients.Diffusion.GetInfo(cctx, &diffusionv1.GetInfoRequest{})
	if err != nil {
		return false, fmt.Sprintf("diffusion service: %v", err)
	}
	var models map[string]uint64
	if refreshModels {
		ml, err := a.Clients.DiffusionModels.ListModels(cctx, &modelsv1.ListModelsRequest{Type: modelsv1.ModelType_MODEL_TYPE_DIFFUSION})
		if err != nil {
			return false, fmt.Sprintf("diffusion models: %v", err)
		}
		models = make(map[string]uint64, len(ml.GetModels()))
		for _, m := range ml.GetModels() {
			models[m.GetId()] = m.GetSizeBytes()
		}
	}
	a.mu.Lock()
	a.tel.llm, a.tel.diffusion = li.GetInfo(), di.GetInfo()
	a.tel.caps = probe.Capabilities(di.GetInfo())
	if models != nil {
		a.tel.models = models
	}
	a.mu.Unlock()
	return true, ""
}

// Capabilities are what the host's diffusion engine can do in its mode, as its last
// health check found them (nil when not known: not reached yet, engine stopped), and when
// that check was recorded (zero before the first).
func (a *Agent) Capabilities() (*place.Capabilities, time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.tel.caps, a.checkedAt
}

// HasTelemetry reports whether the host has sent a usage reading and its model list.
func (a *Agent) HasTelemetry() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.tel.usage != nil && a.tel.models != nil
}

// FollowUsage keeps the latest monitor reading until ctx ends, reconnecting with backoff.
func (a *Agent) FollowUsage(ctx context.Context, every time.Duration, log *slog.Logger) {
	backoff := 500 * time.Millisecond
	for ctx.Err() == nil {
		start := time.Now()
		err := a.usageOnce(ctx, every)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > 10*time.Second {
			backoff = 500 * time.Millisecond
		}
		log.Debug("usage stream ended; reconnecting", "host", a.Name(), "error", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

func (a *Agent) usageOnce(ctx context.Context, every time.Duration) error {
	stream, err := a.Clients.Monitor.WatchUsage(ctx, &monitorv1.WatchUsageRequest{IntervalMs: every.Milliseconds()})
	if err != nil {
		return err
	}
	for {
		m, err := stream.Recv()
		if err != nil {
			return err
		}
		a.mu.Lock()
		a.tel.usage, a.tel.usageAt = m.GetUsage(), time.Now()
		a.mu.Unlock()
	}
}

// Load is what runs on and waits for a host, as the API shows it.
type Load struct {
	Running, Queued int
	Offloaded       bool
}

// View renders the host for ListHosts.
func (a *Agent) View(load Load, gpuIndex int) *orchestratorv1.Host {
	a.mu.Lock()
	defer a.mu.Unlock()
	st, why := a.stateLocked()
	v := &orchestratorv1.Host{
		Name: a.Spec.Name, State: st, StateReason: why,
		LlmAddr: a.Spec.LLMAddr, DiffusionAddr: a.Spec.DiffusionAddr, MonitorAddr: a.Spec.MonitorAddr,
		RunningJobs: int32(load.Running), QueuedJobs: int32(load.Queued), LlmOffloaded: load.Offloaded,
	}
	if u := a.tel.usage; u != nil {
		for _, g := range u.GetGpus() {
			v.Gpus = append(v.Gpus, &orchestratorv1.HostGPU{Index: g.GetIndex(), Name: g.GetName(), MemoryTotalBytes: g.GetMemoryTotalBytes(), MemoryFreeBytes: g.GetMemoryFreeBytes()})
		}
		v.TelemetryAt = timestamppb.New(a.tel.usageAt)
	}
	v.FreeBytes = a.freeLocked(gpuIndex)
	if li := a.tel.llm; li != nil && probe.Running(li) {
		v.LlmRunning, v.LlmModel = true, li.GetModelId()
	}
	if di := a.tel.diffusion; di != nil && di.GetStatus() == commonv1.ServerStatus_SERVER_STATUS_RUNNING {
		v.DiffusionModel = di.GetModelId()
	}
	for id := range a.tel.models {
		v.DiffusionModels = append(v.DiffusionModels, id)
	}
	sort.Strings(v.DiffusionModels)
	return v
}

package dispatch_test

// Test doubles of a host's agents (LLM, diffusion, models, monitor and grpc health on one
// gRPC server per host), served over real gRPC on loopback: the registry, the cycle and the
// dispatcher talk to them exactly as to the real services.

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	commonv1 "github.com/genailab/genailab/gen/common/v1"
	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	modelsv1 "github.com/genailab/genailab/gen/models/v1"
	monitorv1 "github.com/genailab/genailab/gen/monitor/v1"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/pkg/grpcerr"
	hostagent "github.com/genailab/genailab/services/orchestrator/internal/agent"
	"github.com/genailab/genailab/services/orchestrator/internal/cycle"
	"github.com/genailab/genailab/services/orchestrator/internal/dispatch"
	"github.com/genailab/genailab/services/orchestrator/internal/events"
	"github.com/genailab/genailab/services/orchestrator/internal/hosts"
	"github.com/genailab/genailab/services/orchestrator/internal/place"
	"github.com/genailab/genailab/services/orchestrator/internal/probe"
	"github.com/genailab/genailab/services/orchestrator/internal/state"
)

const gib = 1 << 30

// busyErr is the diffusion service's answer while its engine generates another image
// (enginerr.ErrBusy mapped to Unavailable at its edge).
var busyErr = status.Error(codes.Unavailable, "generate: Server is busy generating another image")

type agentLLM struct {
	llmv1.UnimplementedLLMServiceServer
}

func (agentLLM) GetInfo(context.Context, *llmv1.GetInfoRequest) (*llmv1.GetInfoResponse, error) {
	return &llmv1.GetInfoResponse{Info: &llmv1.LLMInfo{Status: commonv1.ServerStatus_SERVER_STATUS_RUNNING, Health: commonv1.HealthStatus_HEALTH_STATUS_OK,
		Pid: 100, ModelId: "tiny", Config: &llmv1.LLMConfig{ModelId: "tiny"}}}, nil
}

// agentDiffusion answers busy for its first busy generations; with dieAfterStep, it calls
// die after the first progress step and never answers.
type agentDiffusion struct {
	diffusionv1.UnimplementedDiffusionServiceServer
	mu    sync.Mutex
	busy  int
	calls int
	die   func()
	// endless keeps sending progress until the stream is cancelled.
	endless bool
}

func (*agentDiffusion) GetInfo(context.Context, *diffusionv1.GetInfoRequest) (*diffusionv1.GetInfoResponse, error) {
	return &diffusionv1.GetInfoResponse{Info: &diffusionv1.DiffusionInfo{Status: commonv1.ServerStatus_SERVER_STATUS_RUNNING, ModelId: "demo"}}, nil
}

func (f *agentDiffusion) GenerateImage(r *diffusionv1.GenerateImageRequest, s diffusionv1.DiffusionService_GenerateImageServer) error {
	f.mu.Lock()
	f.calls++
	busy := f.busy > 0
	if busy {
		f.busy--
	}
	die := f.die
	f.mu.Unlock()
	if busy {
		return busyErr
	}
	if f.endless {
		for i := 0; ; i++ {
			p := &diffusionv1.Progress{Stage: diffusionv1.Stage_STAGE_SAMPLING, Step: int32(i%2) + 1, TotalSteps: 2}
			if err := s.Send(&diffusionv1.GenerateImageResponse{Event: &diffusionv1.GenerateImageResponse_Progress{Progress: p}}); err != nil {
				return err
			}
			select {
			case <-s.Context().Done():
				return s.Context().Err()
			case <-time.After(time.Millisecond):
			}
		}
	}
	if err := s.Send(&diffusionv1.GenerateImageResponse{Event: &diffusionv1.GenerateImageResponse_Progress{Progress: &diffusionv1.Progress{Stage: diffusionv1.Stage_STAGE_SAMPLING, Step: 1, TotalSteps: 2}}}); err != nil {
		return err
	}
	if die != nil {
		go die()
		<-s.Context().Done()
		return s.Context().Err()
	}
	return s.Send(&diffusionv1.GenerateImageResponse{Event: &diffusionv1.GenerateImageResponse_Result{Result: &diffusionv1.ImageResult{Png: []byte("png"), Width: r.GetParams().GetWidth(), Height: r.GetParams().GetHeight(), Seed: 1}}})
}

func (f *agentDiffusion) generations() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

type agentModels struct {
	modelsv1.UnimplementedModelServiceServer
}

func (agentModels) ListModels(context.Context, *modelsv1.ListModelsRequest) (*modelsv1.ListModelsResponse, error) {
	return &modelsv1.ListModelsResponse{Models: []*modelsv1.Model{{Id: "demo", SizeBytes: 1 << 20}}}, nil
}

// agentMonitor reports a host without GPU with plenty of RAM: no image needs an offload.
type agentMonitor struct {
	monitorv1.UnimplementedMonitorServiceServer
}

func usage() *monitorv1.Usage {
	return &monitorv1.Usage{Memory: &monitorv1.MemoryInfo{TotalBytes: 32 * gib, AvailableBytes: 24 * gib, UsedBytes: 8 * gib}}
}

func (agentMonitor) GetUsage(context.Context, *monitorv1.GetUsageRequest) (*monitorv1.GetUsageResponse, error) {
	return &monitorv1.GetUsageResponse{Usage: usage()}, nil
}

func (agentMonitor) WatchUsage(_ *monitorv1.WatchUsageRequest, s monitorv1.MonitorService_WatchUsageServer) error {
	if err := s.Send(&monitorv1.WatchUsageResponse{Usage: usage()}); err != nil {
		return err
	}
	<-s.Context().Done()
	return nil
}

// agent is one host's services on one loopback address.
type agent struct {
	addr string
	diff *agentDiffusion
	gs   *grpc.Server
}

func startAgent(t *testing.T, diff *agentDiffusion) *agent {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	llmv1.RegisterLLMServiceServer(gs, agentLLM{})
	diffusionv1.RegisterDiffusionServiceServer(gs, diff)
	modelsv1.RegisterModelServiceServer(gs, agentModels{})
	monitorv1.RegisterMonitorServiceServer(gs, agentMonitor{})
	healthpb.RegisterHealthServer(gs, health.NewServer())
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	return &agent{addr: lis.Addr().String(), diff: diff, gs: gs}
}

type lab struct {
	reg  *hosts.Registry
	disp *dispatch.Dispatcher
	db   *state.DB
}

// newLab follows the agents (named a, b, … in order) and returns a dispatcher over them.
func newLab(t *testing.T, o dispatch.Options, agents ...*agent) *lab {
	t.Helper()
	return newLabWith(t, o, cycle.Options{}, agents...)
}

// newLabWith is newLab with the hosts' cycles timed by co.
func newLabWith(t *testing.T, o dispatch.Options, co cycle.Options, agents ...*agent) *lab {
	t.Helper()
	co.PeakInterval, co.FreePoll = -1, 5*time.Millisecond
	db, err := state.Open(filepath.Join(t.TempDir(), "o.db"), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	log := slog.New(slog.DiscardHandler)
	ev := events.New(db, log)
	var specs []hostagent.Spec
	for i, a := range agents {
		specs = append(specs, hostagent.Spec{Name: string(rune('a' + i)), LLMAddr: a.addr, DiffusionAddr: a.addr, MonitorAddr: a.addr})
	}
	// What server.Run composes on each host: its prober and offload cycle.
	compose := func(a *hostagent.Agent) (hosts.Parts, error) {
		pr := probe.New(a.Clients, probe.Options{}, db)
		hc := co
		hc.Host = a.Name()
		return hosts.Parts{Prober: pr, Cycle: cycle.New(a.Clients, pr, db, ev, hc, log)}, nil
	}
	reg, err := hosts.New(specs, hosts.Options{
		Dial:          []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())},
		Compose:       compose,
		CheckInterval: 50 * time.Millisecond, CheckTimeout: time.Second,
		Place: hostagent.PlaceOptions{DiffusionModel: "demo"},
		DB:    db, ReloadTimeout: co.ReloadTimeout, Log: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { reg.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	o.DiffusionModel = "demo"
	o.Policy = place.Binpack
	disp := dispatch.New(reg, db, ev, o, log)
	t.Cleanup(disp.Wait)
	deadline := time.Now().Add(5 * time.Second)
	// Ready, and with telemetry: a host whose first usage reading has not come yet looks
	// short of memory to placement, which would then prefer another.
	for _, h := range reg.Hosts() {
		for st, _ := h.State(); st != orchestratorv1.HostState_HOST_STATE_READY || !h.HasTelemetry(); st, _ = h.State() {
			if time.Now().After(deadline) {
				t.Fatalf("host %s not ready", h.Name())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return &lab{reg: reg, disp: disp, db: db}
}

// run runs one image and returns its result, the hosts it was placed on and its events.
func (l *lab) run(t *testing.T) (cycle.Outcome, []string, []*orchestratorv1.Event, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var mu sync.Mutex
	var placed []string
	var evs []*orchestratorv1.Event
	out, err := l.disp.Run(ctx, "j1", &diffusionv1.ImageParams{Prompt: "x", Width: proto.Int32(64), Height: proto.Int32(64), Steps: proto.Int32(2)}, cycle.Hooks{
		Placed: func(h string) { mu.Lock(); placed = append(placed, h); mu.Unlock() },
		Event:  func(e *orchestratorv1.Event) { mu.Lock(); evs = append(evs, e); mu.Unlock() },
	})
	mu.Lock()
	defer mu.Unlock()
	return out, placed, evs, err
}

func hostState(t *testing.T, l *lab, name string) orchestratorv1.HostState {
	t.Helper()
	h, err := l.reg.Get(name)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := h.State()
	return st
}

// A host whose engine answers busy is reachable: it stays ready, the job is placed again
// after a short wait (here on the same host, the only one) and succeeds.
func TestBusyEngineIsRetriedWithoutMarkingTheHostUnreachable(t *testing.T) {
	a := startAgent(t, &agentDiffusion{busy: 2})
	l := newLab(t, dispatch.Options{BusyBackoff: 10 * time.Millisecond}, a)
	out, placed, evs, err := l.run(t)
	if err != nil || out.Result == nil {
		t.Fatalf("image after two busy answers: %v", err)
	}
	if strings.Join(placed, ",") != "a,a,a" || a.diff.generations() != 3 {
		t.Fatalf("placed on %v, %d generations; want a three times", placed, a.diff.generations())
	}
	busy := 0
	for _, e := range evs {
		if e.GetType() == orchestratorv1.EventType_EVENT_TYPE_JOB_FAILED {
			if e.GetValues()["busy"] != 1 || !strings.Contains(e.GetMessage(), "reachable but cannot take the image now") {
				t.Errorf("retry event %q %v, want a busy retry", e.GetMessage(), e.GetValues())
			}
			busy++
		}
	}
	if busy != 2 {
		t.Errorf("%d busy retry events, want 2", busy)
	}
	if st := hostState(t, l, "a"); st != orchestratorv1.HostState_HOST_STATE_READY {
		t.Fatalf("a is %s after busy answers, want ready", st)
	}
}

// An engine busy for longer than the retries allow: the caller gets Unavailable (503).
func TestBusyEngineRetriesAreBounded(t *testing.T) {
	a := startAgent(t, &agentDiffusion{busy: 1 << 30})
	l := newLab(t, dispatch.Options{BusyBackoff: time.Millisecond, BusyRetries: 2}, a)
	_, placed, _, err := l.run(t)
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "busy") {
		t.Fatalf("always busy: %v, want Unavailable", err)
	}
	if len(placed) != 3 {
		t.Fatalf("placed %d times, want 3 (the first and 2 retries)", len(placed))
	}
	if st := hostState(t, l, "a"); st != orchestratorv1.HostState_HOST_STATE_READY {
		t.Fatalf("a is %s, want ready", st)
	}
}

// A host whose services go away mid-generation (connection closed, health check failing)
// is unreachable: it is marked so and the job fails over to another host.
func TestUnreachableHostFailsOver(t *testing.T) {
	da := &agentDiffusion{}
	a := startAgent(t, da)
	da.die = a.gs.Stop
	b := startAgent(t, &agentDiffusion{})
	l := newLab(t, dispatch.Options{BusyBackoff: 10 * time.Millisecond}, a, b)
	out, placed, evs, err := l.run(t)
	if err != nil || out.Result == nil {
		t.Fatalf("image after a died: %v", err)
	}
	if strings.Join(placed, ",") != "a,b" {
		t.Fatalf("placed on %v, want a then b", placed)
	}
	var failover bool
	for _, e := range evs {
		if e.GetType() == orchestratorv1.EventType_EVENT_TYPE_JOB_FAILED {
			failover = e.GetValues()["busy"] == 0 && strings.Contains(e.GetMessage(), "placed again on another host")
		}
	}
	if !failover {
		t.Fatalf("no failover event: %v", evs)
	}
	if st := hostState(t, l, "a"); st != orchestratorv1.HostState_HOST_STATE_UNREACHABLE {
		t.Fatalf("a is %s after its services went away, want unreachable", st)
	}
}

// Regression (issue 14 item 10): an engine that keeps printing is cancelled at the
// generation deadline; the job fails with DeadlineExceeded on its host — a deadline is the
// image's failure, not the host's: no failover, no retry, the host stays ready.
func TestEndlessEngineOutputFailsTheJobAtItsDeadlineWithoutFailover(t *testing.T) {
	a := startAgent(t, &agentDiffusion{endless: true})
	b := startAgent(t, &agentDiffusion{})
	l := newLabWith(t, dispatch.Options{BusyBackoff: 10 * time.Millisecond}, cycle.Options{GenerationTimeout: 150 * time.Millisecond}, a, b)
	start := time.Now()
	out, placed, _, err := l.run(t)
	if !errors.Is(err, cycle.ErrGenerationDeadline) || grpcerr.Code(err) != codes.DeadlineExceeded || out.Result != nil {
		t.Fatalf("endless engine: %v (code %v), want DeadlineExceeded", err, grpcerr.Code(err))
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("took %s", took)
	}
	if len(placed) != 1 || a.diff.generations()+b.diff.generations() != 1 {
		t.Fatalf("placed on %v (%d + %d generations), want one attempt", placed, a.diff.generations(), b.diff.generations())
	}
	if st := hostState(t, l, placed[0]); st != orchestratorv1.HostState_HOST_STATE_READY {
		t.Fatalf("%s is %s after a deadline, want ready", placed[0], st)
	}
}

package hosts

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/genailab/genailab/gen/common/v1"
	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	modelsv1 "github.com/genailab/genailab/gen/models/v1"
	monitorv1 "github.com/genailab/genailab/gen/monitor/v1"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/services/orchestrator/internal/agent"
	"github.com/genailab/genailab/services/orchestrator/internal/cycle"
	"github.com/genailab/genailab/services/orchestrator/internal/events"
	"github.com/genailab/genailab/services/orchestrator/internal/place"
	"github.com/genailab/genailab/services/orchestrator/internal/probe"
	"github.com/genailab/genailab/services/orchestrator/internal/relay"
	"github.com/genailab/genailab/services/orchestrator/internal/state"
)

// The simulation: fake host agents (in-process doubles of the LLM, diffusion, model and
// monitor APIs over real loopback gRPC, one server per host) streaming telemetry at 1 Hz.
// With GENAILAB_SIM_AGENTS=N the test binary is the agents' process (helper re-exec), so
// that the benchmark's own CPU time is the orchestrator side only.

const (
	simEnv    = "GENAILAB_SIM_AGENTS"
	simCLIEnv = "GENAILAB_SIM_CLI_FILE"
)

func TestMain(m *testing.M) {
	if n := os.Getenv(simEnv); n != "" {
		var hosts int
		fmt.Sscan(n, &hosts)
		os.Exit(serveAgents(hosts, os.Getenv("GENAILAB_SIM_ADDRS")))
	}
	os.Exit(m.Run())
}

type fakeAgent struct {
	llmv1.UnimplementedLLMServiceServer
	i int
}

type fakeModels struct {
	modelsv1.UnimplementedModelServiceServer
	i int
}

type fakeMonitor struct {
	monitorv1.UnimplementedMonitorServiceServer
	i int
}

func (f *fakeAgent) GetInfo(context.Context, *llmv1.GetInfoRequest) (*llmv1.GetInfoResponse, error) {
	return &llmv1.GetInfoResponse{Info: &llmv1.LLMInfo{Status: commonv1.ServerStatus_SERVER_STATUS_RUNNING, Pid: int32(1000 + f.i), ModelId: "llm", InFlightRequests: int32(f.i % 3)}}, nil
}

func (f *fakeAgent) WatchInfo(_ *llmv1.WatchInfoRequest, s llmv1.LLMService_WatchInfoServer) error {
	<-s.Context().Done()
	return nil
}

type fakeDiffusion struct {
	diffusionv1.UnimplementedDiffusionServiceServer
	i int
}

func (f *fakeDiffusion) GetInfo(context.Context, *diffusionv1.GetInfoRequest) (*diffusionv1.GetInfoResponse, error) {
	// A quarter stopped (no capabilities, as the real service), a quarter sd-server (no
	// previews), half sd-cli.
	info := &diffusionv1.DiffusionInfo{Status: commonv1.ServerStatus_SERVER_STATUS_RUNNING, ModelId: "sdxl",
		Capabilities: &diffusionv1.Capabilities{Edits: true, Masks: true, MaxBatch: 8,
			PreviewMethods: []diffusionv1.PreviewMethod{diffusionv1.PreviewMethod_PREVIEW_METHOD_PROJ}}}
	// With GENAILAB_SIM_CLI_FILE, once that file exists the sd-server hosts run sd-cli
	// (their engine restarted in another mode).
	_, err := os.Stat(os.Getenv(simCLIEnv))
	cli := os.Getenv(simCLIEnv) != "" && err == nil
	switch {
	case f.i%4 == 0:
		info.Status, info.Capabilities = commonv1.ServerStatus_SERVER_STATUS_STOPPED, nil
	case f.i%4 == 2 && !cli:
		info.Config = &diffusionv1.DiffusionConfig{Mode: diffusionv1.EngineMode_ENGINE_MODE_SERVER}
		info.Capabilities.PreviewMethods, info.Capabilities.Limitations = nil, "sd-server writes no previews"
	}
	return &diffusionv1.GetInfoResponse{Info: info}, nil
}

func (f *fakeDiffusion) WatchInfo(_ *diffusionv1.WatchInfoRequest, s diffusionv1.DiffusionService_WatchInfoServer) error {
	<-s.Context().Done()
	return nil
}

func (f *fakeModels) ListModels(context.Context, *modelsv1.ListModelsRequest) (*modelsv1.ListModelsResponse, error) {
	if f.i%10 == 9 {
		return &modelsv1.ListModelsResponse{}, nil // a tenth of the hosts lack the model
	}
	return &modelsv1.ListModelsResponse{Models: []*modelsv1.Model{{Id: "sdxl", SizeBytes: 7 << 30}}}, nil
}

func (f *fakeMonitor) WatchUsage(req *monitorv1.WatchUsageRequest, s monitorv1.MonitorService_WatchUsageServer) error {
	t := time.NewTicker(time.Duration(max(req.GetIntervalMs(), 100)) * time.Millisecond)
	defer t.Stop()
	for n := 0; ; n++ {
		free := uint64(4+(f.i*7+n)%20) << 30
		u := &monitorv1.Usage{Time: timestamppb.Now(), Memory: &monitorv1.MemoryInfo{AvailableBytes: 64 << 30},
			Gpus: []*monitorv1.GPUInfo{{Index: 0, Name: "sim", MemoryTotalBytes: 24 << 30, MemoryFreeBytes: free,
				Processes: []*monitorv1.GPUProcess{{Pid: int32(1000 + f.i), UsedMemoryBytes: uint64(2+f.i%6) << 30}}}}}
		if err := s.Send(&monitorv1.WatchUsageResponse{Usage: u}); err != nil {
			return err
		}
		select {
		case <-s.Context().Done():
			return nil
		case <-t.C:
		}
	}
}

// serveAgents serves n fake hosts on loopback, writes their addresses to file, and runs
// until stdin closes (the parent ended).
func serveAgents(n int, file string) int {
	var addrs []string
	for i := range n {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		s := grpc.NewServer()
		f := &fakeAgent{i: i}
		llmv1.RegisterLLMServiceServer(s, f)
		diffusionv1.RegisterDiffusionServiceServer(s, &fakeDiffusion{i: i})
		modelsv1.RegisterModelServiceServer(s, &fakeModels{i: i})
		monitorv1.RegisterMonitorServiceServer(s, &fakeMonitor{i: i})
		healthpb.RegisterHealthServer(s, health.NewServer())
		go s.Serve(lis)
		addrs = append(addrs, lis.Addr().String())
	}
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, []byte(strings.Join(addrs, "\n")), 0o600); err != nil || os.Rename(tmp, file) != nil {
		return 1
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// startSim starts the agents' process and returns the registry following them, once every
// host is ready.
func startSim(tb testing.TB, n int) *Registry {
	tb.Helper()
	return startSimOn(tb, n, nil)
}

// startSimOn is startSim with the store db (nil: a bbolt file in a temporary directory).
func startSimOn(tb testing.TB, n int, db *state.DB) *Registry {
	tb.Helper()
	return startSimWith(tb, n, simConfig{db: db})
}

// simConfig tunes startSimWith.
type simConfig struct {
	db *state.DB // nil: a bbolt file in a temporary directory
	// env is added to the agents' process; options, when set, adjusts the registry's.
	env     []string
	options func(*Options)
}

func startSimWith(tb testing.TB, n int, sc simConfig) *Registry {
	tb.Helper()
	db := sc.db
	dir := tb.TempDir()
	file := filepath.Join(dir, "addrs")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), fmt.Sprintf("%s=%d", simEnv, n), "GENAILAB_SIM_ADDRS="+file), sc.env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { stdin.Close(); _ = cmd.Wait() })
	var addrs []string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if b, err := os.ReadFile(file); err == nil {
			addrs = strings.Split(string(b), "\n")
			break
		}
		if time.Now().After(deadline) {
			tb.Fatal("the simulated agents did not start")
		}
	}
	if db == nil {
		var err error
		if db, err = state.Open(filepath.Join(dir, "state.db"), state.Options{}); err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { db.Close() })
	}
	var specs []agent.Spec
	for i, a := range addrs {
		specs = append(specs, agent.Spec{Name: fmt.Sprintf("host-%03d", i), LLMAddr: a, DiffusionAddr: a, MonitorAddr: a})
	}
	log := slog.New(slog.DiscardHandler)
	ev := events.New(db, log)
	// What server.Run composes on each host: its prober, cycle and event relay.
	compose := func(a *agent.Agent) (Parts, error) {
		pr := probe.New(a.Clients, probe.Options{}, db)
		rel := &relay.Relay{LLM: a.Clients.LLM, Diffusion: a.Clients.Diffusion, Events: ev, Host: a.Name(), Log: log}
		return Parts{Prober: pr, Cycle: cycle.New(a.Clients, pr, db, ev, cycle.Options{Host: a.Name()}, log), Run: rel.Run}, nil
	}
	o := Options{Dial: []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())},
		Compose: compose, Place: agent.PlaceOptions{DiffusionModel: "sdxl"}, DB: db, Log: log}
	if sc.options != nil {
		sc.options(&o)
	}
	reg, err := New(specs, o)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { reg.Run(ctx); close(done) }()
	tb.Cleanup(func() { cancel(); <-done })
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		ready := 0
		for _, h := range reg.Hosts() {
			if st, _ := h.State(); st == orchestratorv1.HostState_HOST_STATE_READY && h.HasTelemetry() {
				ready++
			}
		}
		if ready == n {
			return reg
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%d of %d simulated hosts ready", ready, n)
		}
	}
}

func TestSimulatedHostsArePlaced(t *testing.T) {
	reg := startSim(t, 20)
	h, ch, err := reg.Acquire(agent.ImageRequest{Width: 1024, Height: 1024}, place.Request{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if h.Name() == "host-009" || h.Name() == "host-019" {
		t.Errorf("placed on %s, which lacks the model", h.Name())
	}
	if !strings.Contains(ch.Explanation, h.Name()) {
		t.Errorf("explanation %q", ch.Explanation)
	}
	if _, err := reg.SetDraining(h.Name(), true); err != nil {
		t.Fatal(err)
	}
	reg.Release(h)
	h2, _, err := reg.Acquire(agent.ImageRequest{Width: 1024, Height: 1024}, place.Request{}, nil, nil)
	if err != nil || h2 == h {
		t.Fatalf("after draining %s: placed on %v (%v)", h.Name(), h2, err)
	}
	if _, _, err := reg.Acquire(agent.ImageRequest{Width: 64, Height: 64}, place.Request{Pin: h2.Name()}, nil, nil); err == nil {
		t.Fatal("a busy pinned host was acquired twice")
	}
	if l := reg.List(nil); len(l) != 20 || l[0].GetName() != "host-000" || len(l[1].GetGpus()) != 1 {
		t.Fatalf("List: %d hosts", len(l))
	}
}

// BenchmarkPlacement100SimulatedHosts: one decision over 100 hosts whose telemetry streams
// in at 1 Hz (goal ≤ 1 ms), and the orchestrator side's CPU while it follows them (goal ≤ 5 %
// of a core), measured with getrusage over a 5 s window after the benchmark loop.
func BenchmarkPlacement100SimulatedHosts(b *testing.B) {
	reg := startSim(b, 100)
	req := agent.ImageRequest{Width: 1024, Height: 1024}
	b.ResetTimer()
	for b.Loop() {
		h, _, err := reg.Acquire(req, place.Request{}, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		reg.mu.Lock()
		h.busy--
		reg.mu.Unlock()
	}
	b.StopTimer()
	var before, after syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	start := time.Now()
	time.Sleep(5 * time.Second)
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	cpu := time.Duration(after.Utime.Nano()+after.Stime.Nano()-before.Utime.Nano()-before.Stime.Nano()) * time.Nanosecond
	b.ReportMetric(100*cpu.Seconds()/time.Since(start).Seconds(), "%cpu-following-100-hosts")
}

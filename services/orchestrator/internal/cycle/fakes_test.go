package cycle_test

// Test doubles of the host's services, served over real gRPC on loopback: the cycle talks
// to them exactly as it talks to the real services.

import (
	"cmp"
	"context"
	"google.golang.org/protobuf/types/known/timestamppb"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	commonv1 "github.com/genailab/genailab/gen/common/v1"
	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	monitorv1 "github.com/genailab/genailab/gen/monitor/v1"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/services/orchestrator/internal/cycle"
	"github.com/genailab/genailab/services/orchestrator/internal/events"
	"github.com/genailab/genailab/services/orchestrator/internal/probe"
	"github.com/genailab/genailab/services/orchestrator/internal/state"
)

const GiB = 1 << 30

type fakeLLM struct {
	llmv1.UnimplementedLLMServiceServer
	mu          sync.Mutex
	running     bool
	pid         int32
	startFails  int // the next starts that fail
	starts      int
	stops       int
	onStop      func() // called when Stop arrives, before stopping
	lastStopReq *llmv1.StopRequest
	lastConfig  *llmv1.LLMConfig
	// slotFiles are reported saved by Stop; lastRestore is what Start was asked to restore.
	slotFiles   []string
	lastRestore []string
	// started is signalled at every successful Start.
	startedCh chan struct{}
}

func (f *fakeLLM) info() *llmv1.LLMInfo {
	st := commonv1.ServerStatus_SERVER_STATUS_STOPPED
	h := commonv1.HealthStatus_HEALTH_STATUS_UNKNOWN
	var pid int32
	if f.running {
		st, h, pid = commonv1.ServerStatus_SERVER_STATUS_RUNNING, commonv1.HealthStatus_HEALTH_STATUS_OK, f.pid
	}
	return &llmv1.LLMInfo{Status: st, Health: h, Pid: pid, ModelId: "tiny", Config: &llmv1.LLMConfig{ModelId: "tiny", ContextSize: 256, Port: 4321}}
}

func (f *fakeLLM) GetInfo(context.Context, *llmv1.GetInfoRequest) (*llmv1.GetInfoResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &llmv1.GetInfoResponse{Info: f.info()}, nil
}

func (f *fakeLLM) Stop(_ context.Context, r *llmv1.StopRequest) (*llmv1.StopResponse, error) {
	if f.onStop != nil {
		f.onStop()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	was := f.running
	prev := f.info().Config
	f.running = false
	f.stops++
	f.lastStopReq = r
	resp := &llmv1.StopResponse{Info: f.info(), PreviousConfig: prev, WasRunning: was}
	if len(f.slotFiles) > 0 && r.GetForOffload() {
		resp.SlotSave = &llmv1.SlotSave{Tokens: 2300, Bytes: 1 << 20, DurationMs: 3}
		for i, name := range f.slotFiles {
			resp.SlotSave.Slots = append(resp.SlotSave.Slots, &llmv1.SavedSlot{SlotId: int32(i), File: name, Tokens: 2300 / int64(len(f.slotFiles))})
		}
	}
	return resp, nil
}

func (f *fakeLLM) Start(_ context.Context, r *llmv1.StartRequest) (*llmv1.StartResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.starts++
	f.lastConfig = r.GetConfig()
	if f.running {
		return nil, status.Error(codes.FailedPrecondition, "llama-server is already running")
	}
	if f.startFails > 0 {
		f.startFails--
		return nil, status.Error(codes.Unavailable, "llama-server exited during start")
	}
	f.running = true
	f.pid++
	f.lastRestore = r.GetRestoreSlotFiles()
	resp := &llmv1.StartResponse{Info: f.info()}
	if len(f.lastRestore) > 0 {
		resp.SlotRestore = &llmv1.SlotRestore{Tokens: 2300, DurationMs: 2}
		for i, name := range f.lastRestore {
			resp.SlotRestore.Slots = append(resp.SlotRestore.Slots, &llmv1.SavedSlot{SlotId: int32(i), File: name})
		}
	}
	if f.startedCh != nil {
		select {
		case f.startedCh <- struct{}{}:
		default:
		}
	}
	return resp, nil
}

func (f *fakeLLM) isRunning() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.running
}

type fakeDiffusion struct {
	diffusionv1.UnimplementedDiffusionServiceServer
	// mode: "", "fail", "block"; "endless" keeps sending progress (steps 1 to 3, over and
	// over) until the stream is cancelled; "loading" keeps sending loading progress.
	mode     string
	started  chan struct{}
	llm      *fakeLLM
	llmSeenD chan bool // whether the LLM was running when generation began
	// killed is closed when an endless generation's stream was cancelled (the diffusion
	// service kills its engine then).
	killed chan struct{}
	sent   atomic.Int64  // progress messages of endless generations
	every  time.Duration // between endless progress messages; default 1 ms
	// release lets "done-then-result" send its result.
	release chan struct{}
	// began, when set, receives the time each generation began.
	began chan time.Time
}

// endless sends progress every f.every until the stream is cancelled.
func (f *fakeDiffusion) endless(s diffusionv1.DiffusionService_GenerateImageServer, stage diffusionv1.Stage) error {
	t := time.NewTicker(cmp.Or(f.every, time.Millisecond))
	defer t.Stop()
	// A cancelled stream ends the loop either in the select or in a Send that fails first: both
	// are the kill the test waits for.
	defer func() {
		if s.Context().Err() != nil && f.killed != nil {
			close(f.killed)
		}
	}()
	for i := 0; ; i++ {
		p := &diffusionv1.Progress{Stage: stage, Step: int32(i%3) + 1, TotalSteps: 3, Message: "still printing"}
		if stage != diffusionv1.Stage_STAGE_SAMPLING {
			p.Step, p.TotalSteps = 0, 0
		}
		if err := s.Send(&diffusionv1.GenerateImageResponse{Event: &diffusionv1.GenerateImageResponse_Progress{Progress: p}}); err != nil {
			return err
		}
		f.sent.Add(1)
		select {
		case <-s.Context().Done():
			return status.Error(codes.Canceled, "generation cancelled: engine killed")
		case <-t.C:
		}
	}
}

func (f *fakeDiffusion) GetInfo(context.Context, *diffusionv1.GetInfoRequest) (*diffusionv1.GetInfoResponse, error) {
	return &diffusionv1.GetInfoResponse{Info: &diffusionv1.DiffusionInfo{ModelId: "demo"}}, nil
}

func (f *fakeDiffusion) GenerateImage(r *diffusionv1.GenerateImageRequest, s diffusionv1.DiffusionService_GenerateImageServer) error {
	if f.began != nil {
		f.began <- time.Now()
	}
	if f.llmSeenD != nil {
		f.llmSeenD <- f.llm.isRunning()
	}
	if f.started != nil {
		close(f.started)
	}
	switch f.mode {
	case "endless":
		return f.endless(s, diffusionv1.Stage_STAGE_SAMPLING)
	case "loading":
		return f.endless(s, diffusionv1.Stage_STAGE_LOADING)
	}
	for i := int32(1); i <= 3; i++ {
		if err := s.Send(&diffusionv1.GenerateImageResponse{Event: &diffusionv1.GenerateImageResponse_Progress{Progress: &diffusionv1.Progress{Stage: diffusionv1.Stage_STAGE_SAMPLING, Step: i, TotalSteps: 3}}}); err != nil {
			return err
		}
	}
	switch f.mode {
	case "fail":
		return status.Error(codes.Internal, "sd-cli exited with code 1: [ERROR] out of memory")
	case "block":
		<-s.Context().Done()
		return status.Error(codes.Canceled, "generation cancelled")
	case "done-then-result":
		// STAGE_DONE (the engine exited), then the result only once release is closed.
		if err := s.Send(&diffusionv1.GenerateImageResponse{Event: &diffusionv1.GenerateImageResponse_Progress{Progress: &diffusionv1.Progress{Stage: diffusionv1.Stage_STAGE_DONE, Step: 3, TotalSteps: 3}}}); err != nil {
			return err
		}
		<-f.release
	}
	return s.Send(&diffusionv1.GenerateImageResponse{Event: &diffusionv1.GenerateImageResponse_Result{Result: &diffusionv1.ImageResult{Png: []byte("png"), Width: 64, Height: 64, Seed: 1}}})
}

// fakeMonitor reports a host without GPU: 8 GiB available plus what the LLM frees.
type fakeMonitor struct {
	monitorv1.UnimplementedMonitorServiceServer
	llm *fakeLLM
	// readings are the diffusion engine's RSS of the readings WatchUsage sends, in order,
	// before it waits for the stream's end; subscribed receives the time of each
	// subscription.
	readings   []uint64
	subscribed chan time.Time
}

func (f *fakeMonitor) WatchUsage(_ *monitorv1.WatchUsageRequest, s monitorv1.MonitorService_WatchUsageServer) error {
	if f.readings == nil {
		return status.Error(codes.Unimplemented, "no readings") // the cycle polls GetUsage then
	}
	if f.subscribed != nil {
		f.subscribed <- time.Now()
	}
	for _, rss := range f.readings {
		u := &monitorv1.Usage{Time: timestamppb.Now(), Memory: &monitorv1.MemoryInfo{TotalBytes: 16 * GiB, AvailableBytes: 8 * GiB},
			ManagedProcesses: []*monitorv1.ManagedProcess{{Pid: 7, Name: "sd-cli", Role: "diffusion", RssBytes: rss}}}
		if err := s.Send(&monitorv1.WatchUsageResponse{Usage: u}); err != nil {
			return err
		}
	}
	<-s.Context().Done()
	return nil
}

func (f *fakeMonitor) GetUsage(context.Context, *monitorv1.GetUsageRequest) (*monitorv1.GetUsageResponse, error) {
	f.llm.mu.Lock()
	defer f.llm.mu.Unlock()
	u := &monitorv1.Usage{Memory: &monitorv1.MemoryInfo{TotalBytes: 16 * GiB, AvailableBytes: 8 * GiB, UsedBytes: 8 * GiB}}
	if f.llm.running {
		u.ManagedProcesses = append(u.ManagedProcesses, &monitorv1.ManagedProcess{Pid: f.llm.pid, Name: "llama-server", Role: "llm", RssBytes: 2 * GiB})
	} else {
		u.Memory.AvailableBytes += 2 * GiB
	}
	return &monitorv1.GetUsageResponse{Usage: u}, nil
}

type rig struct {
	llm   *fakeLLM
	diff  *fakeDiffusion
	mon   *fakeMonitor
	db    *state.DB
	ev    *events.Log
	cycle *cycle.Cycle
	// readings receives one value for each monitor reading the cycle received.
	readings chan struct{}
}

func newRig(t *testing.T, budget uint64, co cycle.Options) *rig {
	t.Helper()
	l := &fakeLLM{running: true, pid: 100}
	d := &fakeDiffusion{llm: l}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	llmv1.RegisterLLMServiceServer(gs, l)
	diffusionv1.RegisterDiffusionServiceServer(gs, d)
	m := &fakeMonitor{llm: l}
	monitorv1.RegisterMonitorServiceServer(gs, m)
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	readings := make(chan struct{}, 16)
	count := func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		cs, err := streamer(ctx, desc, cc, method, opts...)
		if err != nil || method != monitorv1.MonitorService_WatchUsage_FullMethodName {
			return cs, err
		}
		return countingStream{cs, readings}, nil
	}
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithStreamInterceptor(count))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	db, err := state.Open(filepath.Join(t.TempDir(), "o.db"), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	log := slog.New(slog.DiscardHandler)
	ev := events.New(db, log)
	c := probe.Clients{LLM: llmv1.NewLLMServiceClient(cc), Diffusion: diffusionv1.NewDiffusionServiceClient(cc), Monitor: monitorv1.NewMonitorServiceClient(cc)}
	p := probe.New(c, probe.Options{HeadroomBytes: 256 << 20, BudgetBytes: budget}, db)
	if co.BackoffMin == 0 {
		co.BackoffMin, co.BackoffMax = 5e6, 20e6 // 5 ms, 20 ms
	}
	co.FreePoll = 5e6
	if co.PeakInterval == 0 {
		co.PeakInterval = -1 // learning from peaks is TestPeakIsLearntFromReadingsDuringTheGeneration's
	}
	return &rig{llm: l, diff: d, mon: m, db: db, ev: ev, cycle: cycle.New(c, p, db, ev, co, log), readings: readings}
}

// countingStream signals each message received on a WatchUsage stream.
type countingStream struct {
	grpc.ClientStream
	received chan<- struct{}
}

func (c countingStream) RecvMsg(m any) error {
	err := c.ClientStream.RecvMsg(m)
	if err == nil {
		select {
		case c.received <- struct{}{}:
		default: // nobody counts
		}
	}
	return err
}

// types returns the stored event types, oldest first.
func (r *rig) types(t *testing.T) []orchestratorv1.EventType {
	t.Helper()
	r.ev.Flush()
	evs, err := r.db.LastEvents(100)
	if err != nil {
		t.Fatal(err)
	}
	var out []orchestratorv1.EventType
	for _, e := range evs {
		out = append(out, e.Type)
	}
	return out
}

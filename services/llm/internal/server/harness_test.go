package server_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	commonv1 "github.com/genailab/genailab/gen/common/v1"
	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	modelsv1 "github.com/genailab/genailab/gen/models/v1"
	"github.com/genailab/genailab/pkg/ggufgen"
	"github.com/genailab/genailab/pkg/grpcserver"
	"github.com/genailab/genailab/pkg/modelstore"
	"github.com/genailab/genailab/pkg/supervisor"
	"github.com/genailab/genailab/pkg/testenv"
	"github.com/genailab/genailab/services/llm/internal/server"
)

// llamaServer returns the real llama-server (testenv's policy: resolved like the service
// does, skipped without one, failed under GENAILAB_REQUIRE_LLAMA=1).
func llamaServer(t testing.TB) string {
	t.Helper()
	return testenv.RequireLlamaServer(t)
}

// harness is one LLM service process (server.Run) on a loopback port with
// its own data directory, and gRPC clients to it.
type harness struct {
	t       testing.TB
	dataDir string
	store   *modelstore.Store // the test's own handle on the service's store
	llm     llmv1.LLMServiceClient
	logs    commonv1.LogServiceClient
	models  modelsv1.ModelServiceClient
	health  healthpb.HealthClient
	cancel  context.CancelFunc
	done    chan error
	stopped bool
}

type harnessOpts struct {
	chatWait       time.Duration
	termGrace      time.Duration
	healthInterval time.Duration
	// defaultModel is imported (a tiny model) before the service starts
	// and configured as its default; autostart starts it at boot.
	defaultModel string
	autostart    bool
	// allowRemoteBind is -allow-engine-remote-bind; restart tunes the
	// automatic restarts (zero: the defaults).
	allowRemoteBind bool
	restart         supervisor.RestartPolicy
	// slotBudget is -slot-budget-bytes (0: the default).
	slotBudget int64
}

func newHarness(t testing.TB, o harnessOpts) *harness {
	t.Helper()
	bin := llamaServer(t)
	h := &harness{t: t, dataDir: t.TempDir(), done: make(chan error, 1)}
	var err error
	h.store, err = modelstore.Open(modelstore.Options{DataDir: h.dataDir, Type: modelstore.TypeLLM})
	if err != nil {
		t.Fatal(err)
	}
	if o.termGrace == 0 {
		o.termGrace = 500 * time.Millisecond
	}
	if o.defaultModel != "" {
		h.addModel(o.defaultModel, ggufgen.Config{Seed: 1})
	}
	addrFile := filepath.Join(t.TempDir(), "addr")
	var ctx context.Context
	ctx, h.cancel = context.WithCancel(context.Background())
	go func() {
		h.done <- server.Run(ctx, server.Options{
			GRPC: grpcserver.Flags{Addr: "127.0.0.1:0", AddrFile: addrFile}, DataDir: h.dataDir, LlamaServer: bin,
			ChatWaitTimeout: o.chatWait, TermGrace: o.termGrace, Logger: testLogger(),
			DefaultModel: o.defaultModel, Autostart: o.autostart, HealthInterval: o.healthInterval,
			AllowEngineRemoteBind: o.allowRemoteBind, Restart: o.restart, SlotBudgetBytes: o.slotBudget,
		})
	}()
	addr := waitAddr(t, addrFile, h.done)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	h.llm = llmv1.NewLLMServiceClient(conn)
	h.logs = commonv1.NewLogServiceClient(conn)
	h.models = modelsv1.NewModelServiceClient(conn)
	h.health = healthpb.NewHealthClient(conn)
	t.Cleanup(func() {
		h.shutdown()
		conn.Close()
		assertNoEngines(t, h.dataDir)
	})
	return h
}

// shutdown ends Run as a signal would and waits for it.
func (h *harness) shutdown() {
	if h.stopped {
		return
	}
	h.stopped = true
	h.cancel()
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		h.t.Errorf("Run did not return 30 s after its context ended")
	}
}

func testLogger() *slog.Logger {
	if os.Getenv("GENAILAB_TEST_LOG") == "1" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func waitAddr(t testing.TB, path string, done chan error) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
			return string(b)
		}
		select {
		case err := <-done:
			t.Fatalf("Run ended before listening: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	t.Fatal("the service did not write its address file")
	return ""
}

// addModel writes a ggufgen model and imports it into the store as id.
func (h *harness) addModel(id string, c ggufgen.Config) string {
	h.t.Helper()
	src := filepath.Join(h.t.TempDir(), id+".gguf")
	if err := ggufgen.WriteFile(src, c); err != nil {
		h.t.Fatal(err)
	}
	return h.importFile(id, src)
}

// importFile imports src as model id and returns the stored file's path.
func (h *harness) importFile(id, src string) string {
	h.t.Helper()
	rec, err := h.store.Import(context.Background(), id, "", src)
	if err != nil {
		h.t.Fatal(err)
	}
	p, err := h.store.FilePath(id, rec.MainFile().Name)
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func (h *harness) start(cfg *llmv1.LLMConfig) *llmv1.StartResponse {
	h.t.Helper()
	res, err := h.llm.Start(ctxTimeout(h.t, 60*time.Second), &llmv1.StartRequest{Config: cfg})
	if err != nil {
		h.t.Fatalf("Start(%v): %v", cfg, err)
	}
	return res
}

func (h *harness) stop(req *llmv1.StopRequest) *llmv1.StopResponse {
	h.t.Helper()
	res, err := h.llm.Stop(ctxTimeout(h.t, 60*time.Second), req)
	if err != nil {
		h.t.Fatalf("Stop: %v", err)
	}
	return res
}

func (h *harness) info() *llmv1.LLMInfo {
	h.t.Helper()
	res, err := h.llm.GetInfo(ctxTimeout(h.t, 10*time.Second), &llmv1.GetInfoRequest{})
	if err != nil {
		h.t.Fatal(err)
	}
	return res.GetInfo()
}

// chatResult is a whole chat stream.
type chatResult struct {
	deltas []string
	done   *llmv1.ChatDone
	err    error
}

func (r chatResult) text() string { return strings.Join(r.deltas, "") }

// chat runs one chat to its end.
func (h *harness) chat(ctx context.Context, req *llmv1.ChatRequest) chatResult {
	stream, err := h.llm.Chat(ctx, req)
	if err != nil {
		return chatResult{err: err}
	}
	return recvChat(stream, chatResult{})
}

func recvChat(stream grpc.ServerStreamingClient[llmv1.ChatResponse], r chatResult) chatResult {
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			if r.done == nil {
				r.err = errors.New("stream ended without done")
			}
			return r
		}
		if err != nil {
			r.err = err
			return r
		}
		switch ev := msg.Event.(type) {
		case *llmv1.ChatResponse_Delta:
			r.deltas = append(r.deltas, ev.Delta.GetContent())
		case *llmv1.ChatResponse_Done:
			r.done = ev.Done
		}
	}
}

func userChat(text string, maxTokens int32) *llmv1.ChatRequest {
	return &llmv1.ChatRequest{Messages: []*llmv1.ChatMessage{{Role: "user", Content: text}}, MaxTokens: maxTokens}
}

// wantCode fails unless err is a gRPC status with code and a message
// containing every fragment.
func wantCode(t testing.TB, err error, code codes.Code, fragments ...string) {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok || st.Code() != code {
		t.Fatalf("err = %v, want code %s", err, code)
	}
	for _, f := range fragments {
		if !strings.Contains(st.Message(), f) {
			t.Fatalf("message %q does not contain %q", st.Message(), f)
		}
	}
}

// alive reports whether pid exists (a zombie counts: it was not reaped).
func alive(pid int) bool {
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return err == nil
}

// groupMembers lists the processes whose process group is pgid.
func groupMembers(pgid int) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...: comm may hold spaces and ')'.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) > 2 && f[2] == strconv.Itoa(pgid) {
			out = append(out, pid)
		}
	}
	return out
}

// enginesUnder lists processes whose command line mentions dir (every
// llama-server a harness starts loads a model from its data directory).
func enginesUnder(dir string) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && bytes.Contains(b, []byte(dir)) {
			out = append(out, pid)
		}
	}
	return out
}

// assertNoEngines fails if a process started from dir is left (given two
// seconds, as for assertGone).
func assertNoEngines(t testing.TB, dir string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		left := enginesUnder(dir)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("processes left: %v", describe(left))
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// assertGone fails if pid or any member of its process group still exists.
// Members killed together with the engine may need a moment to finish
// exiting and be reaped by init (llama-server forks a child to print a
// backtrace when it aborts), so the group gets two seconds to empty; what
// was seen meanwhile is logged.
func assertGone(t testing.TB, pid int) {
	t.Helper()
	if pid <= 0 {
		t.Fatalf("bad pid %d", pid)
	}
	if alive(pid) {
		t.Errorf("llama-server pid %d still exists after stop", pid)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		m := groupMembers(pid)
		if len(m) == 0 {
			return
		}
		desc := describe(m)
		if time.Now().After(deadline) {
			t.Errorf("process group %d still has members 2 s after stop: %v", pid, desc)
			return
		}
		t.Logf("process group %d: members still exiting: %v", pid, desc)
		time.Sleep(50 * time.Millisecond)
	}
}

// describe returns /proc/<pid>/stat and the command line of each pid.
func describe(pids []int) []string {
	var out []string
	for _, p := range pids {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(p) + "/stat")
		c, _ := os.ReadFile("/proc/" + strconv.Itoa(p) + "/cmdline")
		out = append(out, strings.TrimSpace(string(b))+" cmdline="+strings.ReplaceAll(string(c), "\x00", " "))
	}
	return out
}

func kill9(t testing.TB, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
}

// waitEvent reads WatchInfo events until one of type typ arrives.
func waitEvent(t testing.TB, stream grpc.ServerStreamingClient[llmv1.WatchInfoResponse], typ llmv1.LLMEventType) *llmv1.WatchInfoResponse {
	t.Helper()
	for {
		ev, err := stream.Recv()
		if err != nil {
			t.Fatalf("waiting for %s: %v", typ, err)
		}
		if ev.GetType() == typ {
			return ev
		}
	}
}

package server_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	commonv1 "github.com/genailab/genailab/gen/common/v1"
	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	modelsv1 "github.com/genailab/genailab/gen/models/v1"
	"github.com/genailab/genailab/pkg/ggufgen"
	"github.com/genailab/genailab/pkg/grpcserver"
	"github.com/genailab/genailab/services/llm/internal/server"
	"github.com/genailab/genailab/services/llm/internal/service"
)

const tinyID = "tiny"

func tinyModel() ggufgen.Config { return ggufgen.Config{Seed: 1} }

func TestStartChatStop(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.addModel(tinyID, tinyModel())

	res := h.start(&llmv1.LLMConfig{ModelId: tinyID})
	info := res.GetInfo()
	if info.GetStatus() != commonv1.ServerStatus_SERVER_STATUS_RUNNING || info.GetHealth() != commonv1.HealthStatus_HEALTH_STATUS_OK {
		t.Fatalf("after Start: status %s health %s", info.GetStatus(), info.GetHealth())
	}
	if info.GetPid() <= 0 || info.GetPort() <= 0 || info.GetModelId() != tinyID || info.GetBinaryPath() == "" {
		t.Fatalf("incomplete info: %v", info)
	}
	cfg := info.GetConfig()
	if cfg.GetThreads() < 1 || cfg.GetContextSize() != 256 || cfg.GetHost() != "127.0.0.1" || cfg.GetPort() != info.GetPort() {
		t.Errorf("resolved config: %v (want threads ≥ 1, the model's context 256, loopback, the port in use)", cfg)
	}
	if service.ReadHostFacts().GPU {
		if cfg.GpuLayers != nil {
			t.Errorf("GPU host: gpu_layers = %d, want unset (llama-server fits them)", cfg.GetGpuLayers())
		}
	} else if cfg.GpuLayers == nil || cfg.GetGpuLayers() != 0 {
		t.Errorf("host without GPU: gpu_layers = %v, want 0", cfg.GpuLayers)
	}
	t.Logf("startup %d ms, config %v", res.GetStartupMs(), cfg)

	// llama-server itself answers on the advertised base URL.
	resp, err := http.Get(info.GetBaseUrl() + "/health")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"ok"`) {
		t.Fatalf("GET %s/health = %d %s", info.GetBaseUrl(), resp.StatusCode, body)
	}

	seed := int64(7)
	r := h.chat(ctxTimeout(t, 60*time.Second), &llmv1.ChatRequest{
		Messages:  []*llmv1.ChatMessage{{Role: "system", Content: "be brief"}, {Role: "user", Content: "hello there"}},
		MaxTokens: 48, Seed: &seed,
	})
	if r.err != nil {
		t.Fatalf("Chat: %v", r.err)
	}
	d := r.done
	if len(r.deltas) == 0 || d.GetCompletionTokens() < 1 || d.GetCompletionTokens() > 48 {
		t.Fatalf("chat: %d deltas, done %v", len(r.deltas), d)
	}
	if d.GetPromptTokens() < 1 || d.GetTokensPerSecond() <= 0 || d.GetFinishReason() == "" || d.GetTotalMs() < d.GetTimeToFirstTokenMs() {
		t.Errorf("chat statistics: %v", d)
	}
	t.Logf("chat: %d tokens at %.0f tokens/s, TTFT %d ms, finish %q", d.GetCompletionTokens(), d.GetTokensPerSecond(), d.GetTimeToFirstTokenMs(), d.GetFinishReason())

	// Random weights produce U+FFFD and control characters; they must
	// arrive intact as valid UTF-8 and not break the stream.
	hot := float32(1.5)
	r = h.chat(ctxTimeout(t, 60*time.Second), &llmv1.ChatRequest{
		Messages: []*llmv1.ChatMessage{{Role: "user", Content: "\uFFFD\x01 odd input é"}}, MaxTokens: 200, Temperature: &hot, Seed: &seed,
	})
	if r.err != nil {
		t.Fatalf("Chat with random output: %v", r.err)
	}
	text := r.text()
	if !utf8.ValidString(text) {
		t.Fatal("chat text is not valid UTF-8")
	}
	if !strings.ContainsFunc(text, func(c rune) bool { return c == utf8.RuneError || unicode.IsControl(c) }) {
		t.Errorf("200 random tokens without U+FFFD or a control character: %q", text)
	}

	pid := int(info.GetPid())
	st := h.stop(&llmv1.StopRequest{})
	if !st.GetWasRunning() || st.GetInfo().GetStatus() != commonv1.ServerStatus_SERVER_STATUS_STOPPED || st.GetInfo().GetPid() != 0 {
		t.Fatalf("Stop: %v", st)
	}
	if pc := st.GetPreviousConfig(); pc.GetModelId() != tinyID || pc.GetPort() != 0 || pc.GetContextSize() != 256 {
		t.Errorf("previous_config %v: want the resolved config with the requested (automatic) port", pc)
	}
	assertGone(t, pid)
	if ex := st.GetInfo().GetLastExit(); ex == nil {
		t.Error("no last_exit after stop")
	}
	// Stopping a stopped server succeeds.
	if again := h.stop(&llmv1.StopRequest{}); again.GetWasRunning() {
		t.Error("second Stop says it was running")
	}
}

func TestCrashEventsAndAutoRestart(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.addModel(tinyID, tinyModel())
	watch, err := h.llm.WatchInfo(ctxTimeout(t, 60*time.Second), &llmv1.WatchInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if first := waitEvent(t, watch, llmv1.LLMEventType_LLM_EVENT_TYPE_SNAPSHOT); first.GetInfo().GetStatus() != commonv1.ServerStatus_SERVER_STATUS_STOPPED {
		t.Fatalf("first snapshot: %v", first)
	}

	info := h.start(&llmv1.LLMConfig{ModelId: tinyID, AutoRestart: true}).GetInfo()
	waitEvent(t, watch, llmv1.LLMEventType_LLM_EVENT_TYPE_READY)
	old := int(info.GetPid())
	kill9(t, old)

	crashed := waitEvent(t, watch, llmv1.LLMEventType_LLM_EVENT_TYPE_CRASHED)
	if ex := crashed.GetExit(); ex.GetSignal() != "SIGKILL" || ex.GetExitCode() != -1 {
		t.Fatalf("CRASHED exit = %v, want SIGKILL", ex)
	}
	if crashed.GetInfo().GetStatus() != commonv1.ServerStatus_SERVER_STATUS_CRASHED {
		t.Errorf("CRASHED event info status %s", crashed.GetInfo().GetStatus())
	}
	waitEvent(t, watch, llmv1.LLMEventType_LLM_EVENT_TYPE_RESTARTING)
	restarted := waitEvent(t, watch, llmv1.LLMEventType_LLM_EVENT_TYPE_RESTARTED)
	now := restarted.GetInfo()
	if now.GetPid() == 0 || int(now.GetPid()) == old || now.GetRestarts() != 1 {
		t.Fatalf("after restart: pid %d (old %d), restarts %d", now.GetPid(), old, now.GetRestarts())
	}
	if r := h.chat(ctxTimeout(t, 30*time.Second), userChat("still there?", 8)); r.err != nil {
		t.Fatalf("chat after automatic restart: %v", r.err)
	}
	assertGone(t, old)

	// Without auto_restart the server stays crashed, and chat fails at once.
	h.stop(&llmv1.StopRequest{})
	info = h.start(&llmv1.LLMConfig{ModelId: tinyID}).GetInfo()
	kill9(t, int(info.GetPid()))
	crashed = waitEvent(t, watch, llmv1.LLMEventType_LLM_EVENT_TYPE_CRASHED)
	if crashed.GetExit().GetSignal() != "SIGKILL" {
		t.Fatalf("second crash: %v", crashed.GetExit())
	}
	got := h.info()
	if got.GetStatus() != commonv1.ServerStatus_SERVER_STATUS_CRASHED || got.GetLastExit().GetSignal() != "SIGKILL" || got.GetLastError() == "" {
		t.Fatalf("info after crash: %v", got)
	}
	r := h.chat(ctxTimeout(t, 30*time.Second), &llmv1.ChatRequest{
		Messages: []*llmv1.ChatMessage{{Role: "user", Content: "hi"}}, MaxTokens: 4, WaitTimeoutMs: 20000,
	})
	wantCode(t, r.err, codes.Unavailable, "crashed")
	assertGone(t, int(info.GetPid()))
}

func TestStopWithRequestsInFlight(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	// A context long enough that generation outlasts the test.
	h.addModel("long", ggufgen.Config{Seed: 2, Context: 32768})
	info := h.start(&llmv1.LLMConfig{ModelId: "long", ContextSize: 32768, ParallelSlots: 2}).GetInfo()

	// A client of llama-server's own API that stops reading: llama-server
	// keeps the request in flight, which makes it ignore one SIGTERM.
	body := `{"messages":[{"role":"user","content":"go on"}],"max_tokens":30000,"stream":true}`
	resp, err := http.Post(info.GetBaseUrl()+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
		t.Fatalf("direct stream: %v", err)
	}

	// And a chat through the service, also in the middle of its reply.
	stream, err := h.llm.Chat(ctxTimeout(t, 60*time.Second), userChat("and you go on too", 30000))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatalf("first delta: %v", err)
	}
	if n := h.info().GetInFlightRequests(); n != 1 {
		t.Errorf("in_flight_requests = %d, want 1", n)
	}

	began := time.Now()
	st := h.stop(&llmv1.StopRequest{})
	t.Logf("stop with two requests in flight took %s", time.Since(began).Round(time.Millisecond))
	if st.GetInfo().GetStatus() != commonv1.ServerStatus_SERVER_STATUS_STOPPED {
		t.Fatalf("after Stop: %v", st.GetInfo())
	}
	assertGone(t, int(info.GetPid()))

	r := recvChat(stream, chatResult{})
	wantCode(t, r.err, codes.Unavailable, "stopped")
	if n := h.info().GetInFlightRequests(); n != 0 {
		t.Errorf("in_flight_requests after stop = %d", n)
	}
}

func TestBrokenModelsFailWithTheRealReason(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := dir + "/" + name + ".gguf"
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := dir + "/good.gguf"
	if err := ggufgen.WriteFile(good, tinyModel()); err != nil {
		t.Fatal(err)
	}
	whole, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	h.importFile("truncated", write("truncated", whole[:len(whole)*6/10]))
	h.importFile("garbage", write("garbage", []byte(strings.Repeat("this is not a model file\n", 200))))
	h.importFile("empty", write("empty", nil))
	missing := h.importFile("missing", good)
	if err := os.Remove(missing); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct{ id, reason string }{
		{"truncated", "data is not within the file bounds"},
		{"garbage", "invalid magic characters"},
		{"empty", "failed to read magic"},
		{"missing", "failed to open GGUF file"},
	} {
		t.Run(tc.id, func(t *testing.T) {
			_, err := h.llm.Start(ctxTimeout(t, 60*time.Second), &llmv1.StartRequest{Config: &llmv1.LLMConfig{ModelId: tc.id}})
			wantCode(t, err, codes.Unavailable, tc.reason, "exited during start")
			first, _, _ := strings.Cut(err.Error(), "\n")
			t.Logf("%s: %s", tc.id, first)
			info := h.info()
			if info.GetStatus() != commonv1.ServerStatus_SERVER_STATUS_STOPPED || !strings.Contains(info.GetLastError(), tc.reason) {
				t.Errorf("after failed start: status %s, last_error %q", info.GetStatus(), info.GetLastError())
			}
			assertNoEngines(t, h.dataDir)
		})
	}
}

func TestStartErrors(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.addModel(tinyID, tinyModel())
	ctx := ctxTimeout(t, 60*time.Second)

	r := h.chat(ctx, userChat("anyone?", 4))
	wantCode(t, r.err, codes.Unavailable, "never started")

	_, err := h.llm.Start(ctx, &llmv1.StartRequest{Config: &llmv1.LLMConfig{ModelId: "no-such-model"}})
	wantCode(t, err, codes.NotFound, "no-such-model")
	_, err = h.llm.Start(ctx, &llmv1.StartRequest{Config: &llmv1.LLMConfig{ModelId: "../../etc"}})
	wantCode(t, err, codes.InvalidArgument)
	_, err = h.llm.Start(ctx, &llmv1.StartRequest{Config: &llmv1.LLMConfig{ModelId: tinyID, ExtraArgs: []string{"--host", "0.0.0.0"}}})
	wantCode(t, err, codes.InvalidArgument, "--host")
	_, err = h.llm.Start(ctx, &llmv1.StartRequest{})
	wantCode(t, err, codes.InvalidArgument, "model_id")

	// A port held by another socket: a clear error, before any model load.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	began := time.Now()
	_, err = h.llm.Start(ctx, &llmv1.StartRequest{Config: &llmv1.LLMConfig{ModelId: tinyID, Port: int32(port)}})
	wantCode(t, err, codes.FailedPrecondition, fmt.Sprintf("port %d is already in use", port))
	t.Logf("port in use reported in %s: %v", time.Since(began).Round(time.Microsecond), err)

	// Not ready within the request's bound: the process is killed.
	_, err = h.llm.Start(ctx, &llmv1.StartRequest{Config: &llmv1.LLMConfig{ModelId: tinyID}, ReadyTimeoutMs: 1})
	wantCode(t, err, codes.DeadlineExceeded, "did not become ready")
	assertNoEngines(t, h.dataDir)
	_, err = h.llm.Start(ctx, &llmv1.StartRequest{Config: &llmv1.LLMConfig{ModelId: tinyID}, ReadyTimeoutMs: -1})
	wantCode(t, err, codes.InvalidArgument, "ready_timeout_ms")

	info := h.start(&llmv1.LLMConfig{ModelId: tinyID}).GetInfo()
	_, err = h.llm.Start(ctx, &llmv1.StartRequest{Config: &llmv1.LLMConfig{ModelId: tinyID}})
	wantCode(t, err, codes.FailedPrecondition, "already running")

	// A bad new configuration leaves the running server alone.
	_, err = h.llm.Restart(ctx, &llmv1.RestartRequest{Config: &llmv1.LLMConfig{ModelId: tinyID, CacheTypeK: "q9_9"}})
	wantCode(t, err, codes.InvalidArgument, "cache_type_k")
	if now := h.info(); now.GetPid() != info.GetPid() || now.GetStatus() != commonv1.ServerStatus_SERVER_STATUS_RUNNING {
		t.Fatalf("after a refused restart: %v", now)
	}
	// Restart with the current configuration: a new process, same model.
	res, err := h.llm.Restart(ctx, &llmv1.RestartRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if res.GetInfo().GetPid() == info.GetPid() || res.GetInfo().GetStatus() != commonv1.ServerStatus_SERVER_STATUS_RUNNING {
		t.Fatalf("after Restart: %v", res.GetInfo())
	}
	assertGone(t, int(info.GetPid()))
}

func TestOffloadedChatWaitsForStart(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.addModel(tinyID, tinyModel())
	h.start(&llmv1.LLMConfig{ModelId: tinyID})

	st := h.stop(&llmv1.StopRequest{ForOffload: true, DrainTimeoutMs: 2000})
	if !st.GetWasRunning() || !st.GetInfo().GetOffloaded() {
		t.Fatalf("Stop for offload: %v", st)
	}

	waiting := make(chan chatResult, 1)
	go func() {
		waiting <- h.chat(ctxTimeout(t, 60*time.Second), &llmv1.ChatRequest{
			Messages: []*llmv1.ChatMessage{{Role: "user", Content: "are you back?"}}, MaxTokens: 8, WaitTimeoutMs: 30000,
		})
	}()
	// A chat with a short bound gives up while the server is away.
	short := h.chat(ctxTimeout(t, 30*time.Second), &llmv1.ChatRequest{
		Messages: []*llmv1.ChatMessage{{Role: "user", Content: "quick"}}, MaxTokens: 8, WaitTimeoutMs: 300,
	})
	wantCode(t, short.err, codes.Unavailable, "offload")
	select {
	case r := <-waiting:
		t.Fatalf("chat answered while offloaded: %+v", r)
	default:
	}

	// The orchestrator's reload: Start with the saved configuration.
	h.start(st.GetPreviousConfig())
	r := <-waiting
	if r.err != nil {
		t.Fatalf("waiting chat after reload: %v", r.err)
	}
	if r.done.GetWaitedMs() < 300 || len(r.deltas) == 0 {
		t.Errorf("waiting chat: waited %d ms (the short chat alone took 300 ms), %d deltas", r.done.GetWaitedMs(), len(r.deltas))
	}
	if h.info().GetOffloaded() {
		t.Error("still offloaded after Start")
	}

	// A plain Stop is not an offload: chat fails at once.
	h.stop(&llmv1.StopRequest{})
	began := time.Now()
	r = h.chat(ctxTimeout(t, 30*time.Second), &llmv1.ChatRequest{
		Messages: []*llmv1.ChatMessage{{Role: "user", Content: "hi"}}, MaxTokens: 4, WaitTimeoutMs: 20000,
	})
	wantCode(t, r.err, codes.Unavailable, "not running")
	if waited := time.Since(began); waited > 10*time.Second {
		t.Errorf("chat to a stopped (not offloaded) server waited %s", waited)
	}
}

func TestModelServiceOnTheSameServer(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.addModel(tinyID, tinyModel())
	ctx := ctxTimeout(t, 60*time.Second)
	list, err := h.models.ListModels(ctx, &modelsv1.ListModelsRequest{Type: modelsv1.ModelType_MODEL_TYPE_LLM})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetModels()) != 1 || list.GetModels()[0].GetId() != tinyID {
		t.Fatalf("ListModels: %v", list)
	}
	h.start(&llmv1.LLMConfig{ModelId: tinyID})
	got, err := h.models.GetModel(ctx, &modelsv1.GetModelRequest{Id: tinyID})
	if err != nil {
		t.Fatal(err)
	}
	if !got.GetModel().GetInUse() {
		t.Error("model served by the running llama-server is not in_use")
	}
	_, err = h.models.DeleteModel(ctx, &modelsv1.DeleteModelRequest{Id: tinyID, Type: modelsv1.ModelType_MODEL_TYPE_LLM})
	wantCode(t, err, codes.FailedPrecondition, "in use")
	h.stop(&llmv1.StopRequest{})
	if _, err := h.models.DeleteModel(ctx, &modelsv1.DeleteModelRequest{Id: tinyID, Type: modelsv1.ModelType_MODEL_TYPE_LLM}); err != nil {
		t.Fatalf("delete after stop: %v", err)
	}
	_, err = h.llm.Start(ctx, &llmv1.StartRequest{Config: &llmv1.LLMConfig{ModelId: tinyID}})
	wantCode(t, err, codes.NotFound)
}

func TestStreamLogsTailAndFollow(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.addModel(tinyID, tinyModel())
	h.start(&llmv1.LLMConfig{ModelId: tinyID})
	ctx := ctxTimeout(t, 60*time.Second)

	tail, err := h.llm.StreamLogs(ctx, &llmv1.StreamLogsRequest{TailLines: proto.Int32(200)})
	if err != nil {
		t.Fatal(err)
	}
	var lines []*commonv1.LogLine
	for {
		m, err := tail.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, m.GetLine())
	}
	var listening, warned bool
	for i, l := range lines {
		if i > 0 && l.GetSeq() != lines[i-1].GetSeq()+1 {
			t.Errorf("seq %d after %d", l.GetSeq(), lines[i-1].GetSeq())
		}
		if strings.Contains(l.GetMessage(), "listening on http://") && l.GetLevel() == commonv1.LogLevel_LOG_LEVEL_INFO &&
			l.GetStream() == commonv1.LogStream_LOG_STREAM_STDERR && !strings.HasPrefix(l.GetMessage(), "0.") {
			listening = true
		}
		if l.GetLevel() == commonv1.LogLevel_LOG_LEVEL_WARN {
			warned = true
		}
	}
	if !listening || !warned || len(lines) < 5 {
		t.Fatalf("tail of %d lines: listening line parsed %v, a warning %v", len(lines), listening, warned)
	}
	three, err := h.llm.StreamLogs(ctx, &llmv1.StreamLogsRequest{TailLines: proto.Int32(3)})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		if _, err := three.Recv(); err != nil {
			break
		}
		n++
	}
	if n != 3 {
		t.Errorf("tail_lines 3 sent %d lines", n)
	}
	// Issue 15: without tail_lines the stream sent nothing (GET /v1/llm/logs answered an
	// empty 200). It sends the default tail, through this service's RPC and through the
	// shared genailab.common.v1.LogService alike.
	count := func(recv func() (*commonv1.LogLine, error)) (int, uint64) {
		n, last := 0, uint64(0)
		for {
			l, err := recv()
			if err != nil {
				if err != io.EOF {
					t.Fatal(err)
				}
				return n, last
			}
			n, last = n+1, l.GetSeq()
		}
	}
	old, err := h.llm.StreamLogs(ctx, &llmv1.StreamLogsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	oldN, oldLast := count(func() (*commonv1.LogLine, error) { m, err := old.Recv(); return m.GetLine(), err })
	shared, err := h.logs.StreamLogs(ctx, &commonv1.StreamLogsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	sharedN, sharedLast := count(func() (*commonv1.LogLine, error) { m, err := shared.Recv(); return m.GetLine(), err })
	// The log only grows (llama-server may log a request meanwhile): at least what the
	// first tail had, at most the default.
	if least := min(len(lines), 200); oldN < least || oldN > 200 || sharedN < least || sharedN > 200 || oldLast < lines[len(lines)-1].GetSeq() || sharedLast < oldLast {
		t.Errorf("omitted tail_lines: %d lines (last %d) and %d through LogService (last %d), want %d..200", oldN, oldLast, sharedN, sharedLast, least)
	}

	follow, err := h.llm.StreamLogs(ctx, &llmv1.StreamLogsRequest{TailLines: proto.Int32(0), Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.llm.Restart(ctx, &llmv1.RestartRequest{}); err != nil {
		t.Fatal(err)
	}
	last := lines[len(lines)-1].GetSeq()
	for {
		m, err := follow.Recv()
		if err != nil {
			t.Fatalf("follow: %v", err)
		}
		if m.GetLine().GetSeq() <= last {
			t.Fatalf("follow sent an old line %d (tail ended at %d)", m.GetLine().GetSeq(), last)
		}
		if strings.Contains(m.GetLine().GetMessage(), "loading model") {
			break
		}
	}
	bad, err := h.llm.StreamLogs(ctx, &llmv1.StreamLogsRequest{TailLines: proto.Int32(-1)})
	if err == nil {
		_, err = bad.Recv() // a server stream's error arrives with its first Recv
	}
	wantCode(t, err, codes.InvalidArgument, "tail_lines")
}

func TestShutdownStopsLlamaServer(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.addModel(tinyID, tinyModel())
	pid := int(h.start(&llmv1.LLMConfig{ModelId: tinyID}).GetInfo().GetPid())
	h.shutdown()
	assertGone(t, pid)
	if _, err := os.Stat(h.dataDir + "/llm/llama-server.pid"); !os.IsNotExist(err) {
		t.Errorf("pid file left after shutdown: %v", err)
	}
	if b, err := os.ReadFile(h.dataDir + "/llm/llama-server.log"); err != nil || !strings.Contains(string(b), "listening on") {
		t.Errorf("log file: %v, %d bytes", err, len(b))
	}
}

func TestChatValidation(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	ctx := ctxTimeout(t, 30*time.Second)
	for name, req := range map[string]*llmv1.ChatRequest{
		"no messages": {MaxTokens: 4},
		"bad role":    {Messages: []*llmv1.ChatMessage{{Role: "tool", Content: "x"}}},
		"max tokens":  {Messages: []*llmv1.ChatMessage{{Role: "user", Content: "x"}}, MaxTokens: -1},
		"wait":        {Messages: []*llmv1.ChatMessage{{Role: "user", Content: "x"}}, WaitTimeoutMs: -1},
	} {
		r := h.chat(ctx, req)
		if r.err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		wantCode(t, r.err, codes.InvalidArgument)
	}
}

func TestAutostartDefaultModel(t *testing.T) {
	h := newHarness(t, harnessOpts{defaultModel: tinyID, autostart: true})
	watch, err := h.llm.WatchInfo(ctxTimeout(t, 60*time.Second), &llmv1.WatchInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	// The snapshot may already show it running; otherwise READY follows.
	first, err := watch.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if first.GetInfo().GetStatus() != commonv1.ServerStatus_SERVER_STATUS_RUNNING {
		waitEvent(t, watch, llmv1.LLMEventType_LLM_EVENT_TYPE_READY)
	}
	info := h.info()
	if info.GetModelId() != tinyID || !info.GetConfig().GetAutoRestart() {
		t.Fatalf("autostarted server: %v", info)
	}
	// A Start without a model uses the default model.
	h.stop(&llmv1.StopRequest{})
	if got := h.start(&llmv1.LLMConfig{}).GetInfo().GetModelId(); got != tinyID {
		t.Fatalf("Start without model_id started %q", got)
	}
}

func TestAutostartNeedsADefaultModel(t *testing.T) {
	err := server.Run(context.Background(), server.Options{GRPC: grpcserver.Flags{Addr: "127.0.0.1:0"}, DataDir: t.TempDir(), Autostart: true})
	if err == nil || !strings.Contains(err.Error(), "default model") {
		t.Fatalf("Run with -autostart and no default model: %v", err)
	}
}

func TestShutdownEndsWaitingChats(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.addModel(tinyID, tinyModel())
	h.start(&llmv1.LLMConfig{ModelId: tinyID})
	h.stop(&llmv1.StopRequest{ForOffload: true})
	waiting := make(chan chatResult, 1)
	go func() {
		waiting <- h.chat(ctxTimeout(t, 60*time.Second), &llmv1.ChatRequest{
			Messages: []*llmv1.ChatMessage{{Role: "user", Content: "hello?"}}, MaxTokens: 4, WaitTimeoutMs: 60000,
		})
	}()
	// Let the chat reach the service and wait there (if it came later, the
	// closed server refuses it: Unavailable too).
	time.Sleep(200 * time.Millisecond)
	began := time.Now()
	h.shutdown()
	// A waiting chat holding up the graceful stop would take its whole
	// 5 s grace.
	if took := time.Since(began); took > 4*time.Second {
		t.Errorf("shutdown took %s with a chat waiting", took)
	}
	select {
	case r := <-waiting:
		wantCode(t, r.err, codes.Unavailable)
		t.Logf("waiting chat: %v", r.err)
	case <-time.After(30 * time.Second):
		t.Fatal("a chat waiting for an offloaded server outlived the service")
	}
}

func TestHealthChangesWhenLlamaServerHangs(t *testing.T) {
	h := newHarness(t, harnessOpts{healthInterval: 100 * time.Millisecond})
	h.addModel(tinyID, tinyModel())
	watch, err := h.llm.WatchInfo(ctxTimeout(t, 60*time.Second), &llmv1.WatchInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	pid := int(h.start(&llmv1.LLMConfig{ModelId: tinyID}).GetInfo().GetPid())
	waitEvent(t, watch, llmv1.LLMEventType_LLM_EVENT_TYPE_READY)
	// A stopped process keeps its socket but answers nothing: the health
	// probe times out.
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(pid, syscall.SIGCONT)
	bad := waitEvent(t, watch, llmv1.LLMEventType_LLM_EVENT_TYPE_HEALTH_CHANGED)
	if bad.GetInfo().GetHealth() != commonv1.HealthStatus_HEALTH_STATUS_ERROR || bad.GetInfo().GetStatus() != commonv1.ServerStatus_SERVER_STATUS_RUNNING {
		t.Fatalf("health event while hung: %v", bad)
	}
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	good := waitEvent(t, watch, llmv1.LLMEventType_LLM_EVENT_TYPE_HEALTH_CHANGED)
	if good.GetInfo().GetHealth() != commonv1.HealthStatus_HEALTH_STATUS_OK {
		t.Fatalf("health event after SIGCONT: %v", good)
	}
	t.Logf("%s / %s", bad.GetMessage(), good.GetMessage())
}

func TestStopDrainLetsChatsFinish(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.addModel(tinyID, tinyModel())
	info := h.start(&llmv1.LLMConfig{ModelId: tinyID}).GetInfo()
	stream, err := h.llm.Chat(ctxTimeout(t, 60*time.Second), userChat("take your time", 200))
	if err != nil {
		t.Fatal(err)
	}
	first, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	finished := make(chan chatResult, 1)
	go func() { finished <- recvChat(stream, chatResult{deltas: []string{first.GetDelta().GetContent()}}) }()

	st := h.stop(&llmv1.StopRequest{ForOffload: true, DrainTimeoutMs: 20000})
	r := <-finished
	if r.err != nil || r.done == nil {
		t.Fatalf("chat in flight during a draining stop: err %v, done %v", r.err, r.done)
	}
	if st.GetInfo().GetStatus() != commonv1.ServerStatus_SERVER_STATUS_STOPPED || !st.GetInfo().GetOffloaded() {
		t.Fatalf("after the draining stop: %v", st.GetInfo())
	}
	assertGone(t, int(info.GetPid()))
}

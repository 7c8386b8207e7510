package server_test

import (
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	commonv1 "github.com/genailab/genailab/gen/common/v1"
	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	"github.com/genailab/genailab/pkg/ggufgen"
	"github.com/genailab/genailab/pkg/grpcerr"
)

// TestKill9OfLlamaServerUnderStreamingChat is the fault suite's "kill -9 of llama-server
// under streaming chat" (issue 14), with the real llama-server, a few times in a row: a
// chat is streaming when llama-server is SIGKILLed; the chat ends at once with
// UNAVAILABLE (ENGINE_WENT_AWAY), the crash is seen (a CRASHED event with SIGKILL, then
// RESTARTED with a new pid, and GetInfo counting the restart), a new chat works, and the
// only llama-server of the test's data directory is the new one (the killed one and its
// process group are gone: no orphans). The figures are logged.
func TestKill9OfLlamaServerUnderStreamingChat(t *testing.T) {
	const tries = 3
	h := newHarness(t, harnessOpts{})
	// A context long enough that a reply outlasts the kill.
	h.addModel("long", ggufgen.Config{Seed: 2, Context: 32768})
	watch, err := h.llm.WatchInfo(ctxTimeout(t, 5*time.Minute), &llmv1.WatchInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(t, watch, llmv1.LLMEventType_LLM_EVENT_TYPE_SNAPSHOT)
	pid := int(h.start(&llmv1.LLMConfig{ModelId: "long", ContextSize: 32768, AutoRestart: true}).GetInfo().GetPid())
	waitEvent(t, watch, llmv1.LLMEventType_LLM_EVENT_TYPE_READY)

	for try := 1; try <= tries; try++ {
		stream, err := h.llm.Chat(ctxTimeout(t, 60*time.Second), userChat("go on and on", 30000))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Recv(); err != nil {
			t.Fatalf("try %d: first delta: %v", try, err)
		}
		killed := time.Now()
		kill9(t, pid)

		r := recvChat(stream, chatResult{})
		wantCode(t, r.err, codes.Unavailable)
		if reason := grpcerr.Reason(r.err); reason != "ENGINE_WENT_AWAY" {
			t.Errorf("try %d: chat ended with reason %q (%v), want ENGINE_WENT_AWAY", try, reason, r.err)
		}
		chatEnded := time.Since(killed)

		crashed := waitEvent(t, watch, llmv1.LLMEventType_LLM_EVENT_TYPE_CRASHED)
		if crashed.GetExit().GetSignal() != "SIGKILL" {
			t.Fatalf("try %d: CRASHED %v", try, crashed)
		}
		restarted := waitEvent(t, watch, llmv1.LLMEventType_LLM_EVENT_TYPE_RESTARTED)
		now := restarted.GetInfo()
		if int(now.GetPid()) == pid || now.GetPid() == 0 || now.GetRestarts() != int32(try) {
			t.Fatalf("try %d: after the restart: pid %d (killed %d), restarts %d", try, now.GetPid(), pid, now.GetRestarts())
		}
		back := time.Since(killed)
		if info := h.info(); info.GetStatus() != commonv1.ServerStatus_SERVER_STATUS_RUNNING || info.GetRestarts() != int32(try) ||
			info.GetLastExit().GetSignal() != "SIGKILL" {
			t.Fatalf("try %d: GetInfo after the restart: %v", try, info)
		}
		if r := h.chat(ctxTimeout(t, 30*time.Second), userChat("still there?", 8)); r.err != nil || r.done == nil {
			t.Fatalf("try %d: chat after the restart: %v", try, r.err)
		}
		assertGone(t, pid)
		pid = int(now.GetPid())
		if left := enginesUnder(h.dataDir); !slices.Equal(left, []int{pid}) {
			t.Fatalf("try %d: llama-server processes of the data dir: %v, want only %d", try, describe(left), pid)
		}
		t.Logf("try %d/%d: chat ended %s after the kill, restarted and serving after %s, 0 orphans",
			try, tries, chatEnded.Round(time.Millisecond), back.Round(time.Millisecond))
	}
}

package server_test

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	llmv1 "github.com/genailab/genailab/gen/llm/v1"
)

// A whole_reply chat (llama-server asked for a non-streamed completion) gives the same
// greedy reply as the streamed chat, in one delta, with the same token counts.
func TestChatWholeReplyMatchesStream(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.addModel(tinyID, tinyModel())
	h.start(&llmv1.LLMConfig{ModelId: tinyID})
	req := func(whole bool) *llmv1.ChatRequest {
		return &llmv1.ChatRequest{Messages: []*llmv1.ChatMessage{{Role: "user", Content: "hello there"}},
			MaxTokens: 16, Temperature: proto.Float32(0), Seed: proto.Int64(3), WholeReply: whole}
	}
	streamed := h.chat(ctxTimeout(t, 60*time.Second), req(false))
	whole := h.chat(ctxTimeout(t, 60*time.Second), req(true))
	if streamed.err != nil || whole.err != nil {
		t.Fatalf("streamed: %v, whole: %v", streamed.err, whole.err)
	}
	if len(whole.deltas) != 1 || whole.text() != streamed.text() || streamed.text() == "" {
		t.Fatalf("whole reply %q in %d deltas, streamed %q in %d", whole.text(), len(whole.deltas), streamed.text(), len(streamed.deltas))
	}
	w, s := whole.done, streamed.done
	if w.GetCompletionTokens() != s.GetCompletionTokens() || w.GetPromptTokens() != s.GetPromptTokens() ||
		w.GetFinishReason() != s.GetFinishReason() || w.GetTokensPerSecond() <= 0 {
		t.Fatalf("whole done %v, streamed done %v", w, s)
	}
}

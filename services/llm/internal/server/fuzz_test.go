package server_test

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	"github.com/genailab/genailab/pkg/grpcerr"
)

// Issue 14's fault suite, the LLM service's gRPC edge: Start and Chat requests decoded from
// fuzz bytes go over loopback gRPC to a real LLM service (server.Run, the real
// llama-server configured, an empty model store, so nothing is ever launched). A refused
// request is InvalidArgument with a reason; one that passes validation meets the next
// check (no such model, a remote bind not allowed; no server running for chat), never an
// internal error. The corpus is in testdata/fuzz.

// wantRefusalOr fails unless err is InvalidArgument with a reason, or one of also.
func wantRefusalOr(t *testing.T, what string, err error, also ...codes.Code) {
	t.Helper()
	st, ok := status.FromError(err)
	if err == nil || !ok {
		t.Fatalf("%s: %v, want a status error", what, err)
	}
	if strings.TrimSpace(st.Message()) == "" {
		t.Fatalf("%s: %v without a message", what, st.Code())
	}
	if st.Code() == codes.InvalidArgument {
		if grpcerr.Reason(err) == "" {
			t.Fatalf("%s: InvalidArgument %q without a reason", what, st.Message())
		}
		return
	}
	for _, c := range also {
		if st.Code() == c {
			return
		}
	}
	t.Fatalf("%s: %v %q", what, st.Code(), st.Message())
}

func FuzzStartRequest(f *testing.F) {
	i32 := func(v int32) *int32 { return &v }
	for _, r := range []*llmv1.StartRequest{
		{Config: &llmv1.LLMConfig{ModelId: "tiny"}},
		{Config: &llmv1.LLMConfig{ModelId: "tiny", Host: "127.0.0.1", Port: 0, Threads: 1, ContextSize: 512, GpuLayers: i32(0)}},
		{},
		{Config: &llmv1.LLMConfig{}},
		{Config: &llmv1.LLMConfig{ModelId: "tiny", Host: "0.0.0.0"}},
		{Config: &llmv1.LLMConfig{ModelId: "../../etc/passwd"}},
		{Config: &llmv1.LLMConfig{ModelId: "tiny\x00"}},
		{Config: &llmv1.LLMConfig{ModelId: "tiny", Port: math.MaxInt32, Threads: -1, ContextSize: math.MaxInt32, GpuLayers: i32(-2), ParallelSlots: math.MaxInt32}},
		{Config: &llmv1.LLMConfig{ModelId: "tiny", ExtraArgs: []string{"--host", "0.0.0.0"}}},
		{Config: &llmv1.LLMConfig{ModelId: "tiny", ExtraArgs: []string{"--api-key-file=/etc/shadow"}}},
		{Config: &llmv1.LLMConfig{ModelId: "tiny", CacheTypeK: "q9_9", FlashAttention: 99}},
		{Config: &llmv1.LLMConfig{ModelId: "tiny"}, ReadyTimeoutMs: -1},
	} {
		b, err := proto.Marshal(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	h := newHarness(f, harnessOpts{})
	f.Fuzz(func(t *testing.T, data []byte) {
		var req llmv1.StartRequest
		if err := proto.Unmarshal(data, &req); err != nil {
			return // gRPC refuses such bytes before any handler runs
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := h.llm.Start(ctx, &req)
		wantRefusalOr(t, "Start", err, codes.NotFound, codes.PermissionDenied)
		// Restart validates the same way (the server is stopped: it starts).
		_, err = h.llm.Restart(ctx, &llmv1.RestartRequest{Config: req.GetConfig()})
		wantRefusalOr(t, "Restart", err, codes.NotFound, codes.PermissionDenied, codes.FailedPrecondition)
	})
}

func FuzzChatRequest(f *testing.F) {
	temp, nan, big := float32(0.7), float32(math.NaN()), float32(math.Inf(1))
	for _, r := range []*llmv1.ChatRequest{
		{Messages: []*llmv1.ChatMessage{{Role: "user", Content: "hi"}}, MaxTokens: 8},
		{Messages: []*llmv1.ChatMessage{{Role: "system", Content: "be brief"}, {Role: "user", Content: "hi"}}, Temperature: &temp, Stop: []string{"\n"}},
		{},
		{Messages: []*llmv1.ChatMessage{{}}},
		{Messages: []*llmv1.ChatMessage{{Role: "root", Content: "hi"}}},
		{Messages: []*llmv1.ChatMessage{{Role: "user", Content: "nul\x00"}}, MaxTokens: math.MaxInt32},
		{Messages: []*llmv1.ChatMessage{{Role: "user", Content: "hi"}}, MaxTokens: -1, WaitTimeoutMs: -1},
		{Messages: []*llmv1.ChatMessage{{Role: "user", Content: "hi"}}, Temperature: &nan, TopP: &big},
		{Messages: []*llmv1.ChatMessage{{Role: "user", Content: "hi"}}, Stop: []string{""}},
	} {
		b, err := proto.Marshal(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	h := newHarness(f, harnessOpts{})
	f.Fuzz(func(t *testing.T, data []byte) {
		var req llmv1.ChatRequest
		if err := proto.Unmarshal(data, &req); err != nil {
			return
		}
		// No server is running: an accepted request is answered at once, whatever it
		// asks to wait (the server is stopped, not offloaded).
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r := h.chat(ctx, &req)
		wantRefusalOr(t, "Chat", r.err, codes.Unavailable)
		if len(r.deltas) > 0 {
			t.Fatalf("deltas without a server: %v", r.deltas)
		}
	})
}

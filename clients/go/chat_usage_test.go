package genailab_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	genailab "github.com/genailab/genailab/clients/go"
	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	modelsv1 "github.com/genailab/genailab/gen/models/v1"
	monitorv1 "github.com/genailab/genailab/gen/monitor/v1"
)

// TestChatStreamsTheRealLlamaServersReply chats with the tiny random-weight model the
// stack starts in the real llama-server.
func TestChatStreamsTheRealLlamaServersReply(t *testing.T) {
	c := dial(t)
	ctx := testContext(t, time.Minute)
	seed := int64(7)
	var deltas []string
	done, err := c.Chat(ctx, &llmv1.ChatRequest{Messages: genailab.Messages("user", "Say hello."), MaxTokens: 12, Seed: &seed},
		func(s string) error { deltas = append(deltas, s); return nil })
	if err != nil {
		t.Fatalf("chat: %v", err)
	}
	if len(deltas) < 2 || strings.Join(deltas, "") == "" {
		t.Errorf("deltas %q: want the reply in several pieces", deltas)
	}
	if done.GetCompletionTokens() < 1 || done.GetCompletionTokens() > 12 || done.GetFinishReason() == "" {
		t.Errorf("done %v", done)
	}

	stop := errors.New("enough")
	n := 0
	_, err = c.Chat(ctx, &llmv1.ChatRequest{Messages: genailab.Messages("user", "again"), MaxTokens: 12},
		func(string) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("callback error: %v after %d deltas, want it returned after the first", err, n)
	}
	if _, err := c.Chat(ctx, &llmv1.ChatRequest{}, nil); status.Code(err) != codes.InvalidArgument {
		t.Errorf("empty conversation: %v, want InvalidArgument", err)
	}
}

func TestWatchUsageUntilCancelled(t *testing.T) {
	c := dial(t)
	ctx, cancel := context.WithCancel(testContext(t, 30*time.Second))
	var times []time.Time
	err := c.WatchUsage(ctx, 100*time.Millisecond, func(u *monitorv1.Usage, missed uint64) error {
		if u.GetMemory().GetTotalBytes() == 0 {
			t.Errorf("usage without memory: %v", u)
		}
		times = append(times, u.GetTime().AsTime())
		if len(times) == 3 {
			cancel()
		}
		return nil
	})
	if err != nil || len(times) < 3 {
		t.Fatalf("WatchUsage = %v after %d snapshots, want nil after cancel", err, len(times))
	}
	if !times[1].After(times[0]) || !times[2].After(times[1]) {
		t.Errorf("snapshot times not increasing: %v", times)
	}

	stop := errors.New("stop")
	if err := c.WatchUsage(testContext(t, 10*time.Second), 0, func(*monitorv1.Usage, uint64) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("callback error: got %v", err)
	}
	err = c.WatchUsage(testContext(t, 10*time.Second), 10*time.Millisecond, func(*monitorv1.Usage, uint64) error { return nil })
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("10 ms interval: %v, want InvalidArgument", err)
	}
}

func TestModelsRoutesByType(t *testing.T) {
	c := dial(t)
	ctx := testContext(t, 30*time.Second)
	llm, err := c.Models(modelsv1.ModelType_MODEL_TYPE_LLM).ListModels(ctx, &modelsv1.ListModelsRequest{Type: modelsv1.ModelType_MODEL_TYPE_LLM})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, m := range llm.GetModels() {
		found = found || m.GetId() == "tiny-random-llama"
	}
	if !found {
		t.Errorf("LLM models %v: want the stack's tiny model", llm.GetModels())
	}
	presets, err := c.Models(modelsv1.ModelType_MODEL_TYPE_DIFFUSION).ListPresets(ctx, &modelsv1.ListPresetsRequest{Type: modelsv1.ModelType_MODEL_TYPE_DIFFUSION})
	if err != nil || len(presets.GetPresets()) == 0 {
		t.Fatalf("diffusion presets: %v %v", presets, err)
	}
	for _, p := range presets.GetPresets() {
		if p.GetType() != modelsv1.ModelType_MODEL_TYPE_DIFFUSION {
			t.Errorf("diffusion store listed preset %s of type %s", p.GetId(), p.GetType())
		}
	}
	_, err = c.Models(modelsv1.ModelType_MODEL_TYPE_UNSPECIFIED).ListModels(ctx, &modelsv1.ListModelsRequest{})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("unspecified type: %v, want InvalidArgument", err)
	}
	_, err = c.Models(modelsv1.ModelType_MODEL_TYPE_LLM).VerifyModel(ctx, &modelsv1.VerifyModelRequest{Type: modelsv1.ModelType_MODEL_TYPE_LLM, Id: "no-such-model"})
	if status.Code(err) != codes.NotFound {
		t.Errorf("verify unknown model: %v, want NotFound", err)
	}
}

func TestParseModelType(t *testing.T) {
	for in, want := range map[string]modelsv1.ModelType{"llm": 1, "LLM": 1, "diffusion": 2, "sd": 2, "MODEL_TYPE_DIFFUSION": 2} {
		if got, err := genailab.ParseModelType(in); err != nil || got != want {
			t.Errorf("%q: %v %v", in, got, err)
		}
	}
	if _, err := genailab.ParseModelType("vision"); err == nil {
		t.Error("vision: want an error")
	}
}

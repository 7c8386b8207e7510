package llamaclient

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/genailab/genailab/pkg/ggufgen"
	"github.com/genailab/genailab/pkg/llamabin/llamabintest"
)

// Tests against the real llama-server (skipped with a message when it is not installed).

func realServer(t *testing.T, cfg ggufgen.Config, extra ...string) (*llamabintest.Server, *Client) {
	t.Helper()
	model := filepath.Join(t.TempDir(), "model.gguf")
	if err := ggufgen.WriteFile(model, cfg); err != nil {
		t.Fatal(err)
	}
	srv := llamabintest.Start(t, model, extra...)
	c, err := New(srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	return srv, c
}

func TestRealHealthAndStream(t *testing.T) {
	srv, c := realServer(t, ggufgen.DefaultConfig())
	ctx := context.Background()
	h, err := c.Health(ctx)
	if err != nil || h.State != HealthOK {
		t.Fatalf("health %+v %v", h, err)
	}

	// Greedy: the random-weight model's reply is the same every run; sampled, it sometimes
	// drew its end token early (CI, stop 24), and the reply was not cut by the limit.
	greedy := 0.0
	req := ChatRequest{Messages: []Message{{Role: "system", Content: "Be brief."}, {Role: "user", Content: "Hello \u2603"}}, MaxTokens: 40, Temperature: &greedy}
	s, err := c.ChatStream(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	var evs []Event
	for {
		ev, err := s.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("after %d events: %v", len(evs), err)
		}
		evs = append(evs, ev)
	}
	sum := summarize(evs)
	if sum.content == "" || sum.finish != "length" || !utf8.ValidString(sum.content) {
		t.Fatalf("stream %+v", sum)
	}
	if sum.usage == nil || sum.usage.CompletionTokens != 40 || sum.timings == nil || sum.timings.PredictedN != 40 || sum.timings.PredictedPerSecond <= 0 {
		t.Fatalf("usage %+v timings %+v", sum.usage, sum.timings)
	}

	// Prompt longer than the context: an error answer before any event.
	long := ChatRequest{Messages: []Message{{Role: "user", Content: strings.Repeat("hello world ", 300)}}, MaxTokens: 4}
	if _, err := c.ChatStream(ctx, long); !errors.Is(err, ErrContextExceeded) {
		t.Fatalf("long prompt: %v", err)
	}

	// Gone: connection refused.
	syscall.Kill(-srv.Cmd.Process.Pid, syscall.SIGKILL)
	<-srv.Exited()
	h, err = c.Health(ctx)
	if err != nil || h.State != HealthUnreachable || !h.Refused {
		t.Fatalf("after kill: %+v %v", h, err)
	}
}

func TestRealCancelFreesTheSlot(t *testing.T) {
	// A model slow enough that 3000 tokens take seconds, one slot.
	cfg := ggufgen.Config{Seed: 2, Dim: 256, Layers: 4, Heads: 8, FFN: 512, Context: 4096}
	srv, c := realServer(t, cfg, "-c", "4096")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	greedy := 0.0 // the same reply every run: sampled, the model sometimes ended it within 5 events
	s, err := c.ChatStream(ctx, ChatRequest{Messages: []Message{{Role: "user", Content: "go"}}, MaxTokens: 3000, Temperature: &greedy})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if _, err := s.Recv(); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
	}
	cancel()
	for {
		_, err := s.Recv()
		if err == nil {
			continue // events already buffered
		}
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Recv after cancel: %v", err)
		}
		break
	}
	// llama-server noticed the closed connection and cancelled the task.
	if !srv.WaitLog("cancel task", 20*time.Second) {
		t.Fatalf("no task cancellation in the log:\n%s", srv.Log())
	}
	// The only slot is free again: a short request completes.
	s2, err := c.ChatStream(context.Background(), ChatRequest{Messages: []Message{{Role: "user", Content: "again"}}, MaxTokens: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	for {
		if _, err := s2.Recv(); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
}

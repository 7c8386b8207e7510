package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	"github.com/genailab/genailab/pkg/ggufgen"
	"github.com/genailab/genailab/services/llm/internal/llamaclient"
)

// Issue 17: the conversations' KV caches survive an offload, on the real llama-server.

// longPrefix is a user message of about 2,250 tokens with the tiny model's byte-level vocabulary.
var longPrefix = func() string {
	w := make([]string, 320)
	for i := range w {
		w[i] = fmt.Sprintf("word%d", i%97)
	}
	return strings.Join(w, " ")
}()

const slotCtx = 4096

func slotConfig() *llmv1.LLMConfig {
	return &llmv1.LLMConfig{ModelId: "m", ContextSize: slotCtx, ParallelSlots: 1, Threads: 2}
}

func newSlotHarness(t *testing.T) *harness {
	t.Helper()
	h := newHarness(t, harnessOpts{})
	h.addModel("m", ggufgen.Config{Seed: 1, Context: slotCtx})
	return h
}

// direct talks to the llama-server the service runs, for its timings (prompt_n, cache_n).
func direct(t *testing.T, info *llmv1.LLMInfo) *llamaclient.Client {
	t.Helper()
	c, err := llamaclient.New(info.GetBaseUrl(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// turn sends the conversation so far plus one more user message and returns llama-server's timings
// and the reply.
func turn(t *testing.T, c *llamaclient.Client, history []llamaclient.Message, next string) (*llamaclient.Timings, string) {
	t.Helper()
	msgs := append(append([]llamaclient.Message(nil), history...), llamaclient.Message{Role: "user", Content: next})
	temp := 0.0
	st, err := c.ChatStream(ctxTimeout(t, 120*time.Second), llamaclient.ChatRequest{Messages: msgs, MaxTokens: 4, Temperature: &temp})
	if err != nil {
		t.Fatalf("chat: %v", err)
	}
	defer st.Close()
	var text strings.Builder
	var tm *llamaclient.Timings
	for {
		ev, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("chat stream: %v", err)
		}
		text.WriteString(ev.Content)
		if ev.Timings != nil {
			tm = ev.Timings
		}
	}
	if tm == nil {
		t.Fatal("no timings in the stream")
	}
	return tm, text.String()
}

func offload(t *testing.T, h *harness) *llmv1.SlotSave {
	t.Helper()
	st := h.stop(&llmv1.StopRequest{ForOffload: true, DrainTimeoutMs: 5000, JobId: "job-17", ExpectedDownMs: proto.Int64(30000)})
	if !st.GetInfo().GetOffloaded() {
		t.Fatalf("not offloaded: %v", st.GetInfo())
	}
	return st.GetSlotSave()
}

func startRestoring(t *testing.T, h *harness, cfg *llmv1.LLMConfig, files []string) *llmv1.StartResponse {
	t.Helper()
	res, err := h.llm.Start(ctxTimeout(t, 60*time.Second), &llmv1.StartRequest{Config: cfg, RestoreSlotFiles: files})
	if err != nil {
		t.Fatalf("Start restoring %v: %v", files, err)
	}
	return res
}

func fileNames(s *llmv1.SlotSave) []string {
	var out []string
	for _, sl := range s.GetSlots() {
		out = append(out, sl.GetFile())
	}
	return out
}

func TestSlotsSurviveAnOffload(t *testing.T) {
	h := newSlotHarness(t)
	info := h.start(slotConfig()).GetInfo()
	tm, reply := turn(t, direct(t, info), nil, longPrefix)
	if tm.PromptN < 2000 {
		t.Fatalf("first turn processed %d prompt tokens, want the whole ≥ 2,000-token prefix", tm.PromptN)
	}
	history := []llamaclient.Message{{Role: "user", Content: longPrefix}, {Role: "assistant", Content: reply}}

	saved := offload(t, h)
	if len(saved.GetSlots()) != 1 || saved.GetTokens() < 2000 || saved.GetBytes() <= 0 || len(saved.GetSkipped()) != 0 {
		t.Fatalf("slot save: %v", saved)
	}
	slotDir := filepath.Join(h.dataDir, "llm", "slots")
	if _, err := os.Stat(filepath.Join(slotDir, saved.GetSlots()[0].GetFile())); err != nil {
		t.Fatalf("saved slot file: %v", err)
	}

	res := startRestoring(t, h, slotConfig(), fileNames(saved))
	rs := res.GetSlotRestore()
	if len(rs.GetSlots()) != 1 || rs.GetTokens() != saved.GetTokens() || len(rs.GetSkipped()) != 0 {
		t.Fatalf("slot restore: %v (saved %v)", rs, saved)
	}
	tm, reply2 := turn(t, direct(t, res.GetInfo()), history, "and then?")
	if tm.CacheN < 2000 || tm.PromptN > 200 {
		t.Fatalf("after restore: prompt_n %d, cache_n %d; want the prefix (≥ 2,000 tokens) from the restored cache", tm.PromptN, tm.CacheN)
	}
	// The restore consumed the files.
	if ents, _ := os.ReadDir(slotDir); len(ents) != 0 {
		t.Errorf("slot dir after restore: %v", ents)
	}

	// The same cycle without restore: the whole prompt is processed again.
	history = append(history, llamaclient.Message{Role: "user", Content: "and then?"}, llamaclient.Message{Role: "assistant", Content: reply2})
	if s := offload(t, h); len(s.GetSlots()) != 1 {
		t.Fatalf("second save: %v", s)
	}
	res = h.start(slotConfig())
	if res.GetSlotRestore() != nil {
		t.Fatalf("restore without files asked: %v", res.GetSlotRestore())
	}
	tm, _ = turn(t, direct(t, res.GetInfo()), history, "one more")
	if tm.PromptN < 2000 {
		t.Fatalf("without restore: prompt_n %d, cache_n %d; want the whole prompt processed", tm.PromptN, tm.CacheN)
	}
}

func TestSlotRestoreSkipsCorruptAndMismatchedFiles(t *testing.T) {
	h := newSlotHarness(t)
	slotDir := filepath.Join(h.dataDir, "llm", "slots")
	fill := func(t *testing.T) *llmv1.SlotSave {
		t.Helper()
		info := h.info()
		turn(t, direct(t, info), nil, longPrefix)
		s := offload(t, h)
		if len(s.GetSlots()) != 1 {
			t.Fatalf("save: %v", s)
		}
		return s
	}
	wantSkipped := func(t *testing.T, res *llmv1.StartResponse, fragment string) {
		t.Helper()
		rs := res.GetSlotRestore()
		if len(rs.GetSlots()) != 0 || len(rs.GetSkipped()) != 1 || !strings.Contains(rs.GetSkipped()[0].GetReason(), fragment) {
			t.Fatalf("restore: %v, want one file skipped for %q", rs, fragment)
		}
		// The server serves, with an empty cache.
		if tm, _ := turn(t, direct(t, res.GetInfo()), nil, longPrefix[:len(longPrefix)/3]); tm.CacheN != 0 || tm.PromptN < 500 {
			t.Fatalf("after a skipped restore: prompt_n %d, cache_n %d", tm.PromptN, tm.CacheN)
		}
	}
	h.start(slotConfig())

	t.Run("corrupt", func(t *testing.T) {
		s := fill(t)
		p := filepath.Join(slotDir, s.GetSlots()[0].GetFile())
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		data[len(data)/2] ^= 0xff
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		wantSkipped(t, startRestoring(t, h, slotConfig(), fileNames(s)), "corrupt")
	})
	t.Run("refused by llama-server", func(t *testing.T) {
		// Garbage whose checksum the manifest agrees with: llama-server's own check refuses it.
		s := fill(t)
		name := s.GetSlots()[0].GetFile()
		garbage := []byte(strings.Repeat("not a kv cache ", 64))
		if err := os.WriteFile(filepath.Join(slotDir, name), garbage, 0o600); err != nil {
			t.Fatal(err)
		}
		rewriteManifest(t, slotDir, func(e map[string]any) {
			e["bytes"] = len(garbage)
			e["crc32c"] = crc32.Checksum(garbage, crc32.MakeTable(crc32.Castagnoli))
		})
		wantSkipped(t, startRestoring(t, h, slotConfig(), []string{name}), "Unable to restore slot")
	})
	t.Run("other context size", func(t *testing.T) {
		s := fill(t)
		cfg := slotConfig()
		cfg.ContextSize = slotCtx / 2
		wantSkipped(t, startRestoring(t, h, cfg, fileNames(s)), "context size 4096, now 2048")
		if s := offload(t, h); s == nil {
			t.Fatal("no save")
		}
		h.start(slotConfig())
	})
	t.Run("unknown file", func(t *testing.T) {
		fill(t)
		wantSkipped(t, startRestoring(t, h, slotConfig(), []string{"slot-0-1.bin"}), "not in the slot manifest")
	})
	t.Run("bad name", func(t *testing.T) {
		fill(t)
		_, err := h.llm.Start(ctxTimeout(t, 60*time.Second), &llmv1.StartRequest{Config: slotConfig(), RestoreSlotFiles: []string{"../x.bin"}})
		wantCode(t, err, 3 /* InvalidArgument */, "restore_slot_files")
		h.start(slotConfig())
	})
}

// rewriteManifest edits the entries of the slot manifest in dir.
func rewriteManifest(t *testing.T, dir string, edit func(map[string]any)) {
	t.Helper()
	p := filepath.Join(dir, "manifest.json")
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // the model file's mtime in ns does not fit a float64
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	for _, e := range m["slots"].([]any) {
		edit(e.(map[string]any))
	}
	if data, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestChatDuringAnOffloadGetsTheWaitingStatusThenItsAnswer(t *testing.T) {
	h := newSlotHarness(t)
	h.start(slotConfig())
	saved := offload(t, h)

	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	stream, err := h.llm.Chat(ctx, userChat("are you back?", 8))
	if err != nil {
		t.Fatal(err)
	}
	first, err := stream.Recv()
	if err != nil {
		t.Fatalf("first message: %v", err)
	}
	w := first.GetWaiting()
	if w == nil || w.GetJobId() != "job-17" || !strings.HasPrefix(w.GetMessage(), "waiting: the LLM is offloaded for an image, expected back in ~") ||
		w.ExpectedWaitMs == nil || w.GetExpectedWaitMs() <= 0 || w.GetExpectedWaitMs() > 30000 {
		t.Fatalf("first message %v, want the waiting status", first)
	}
	startRestoring(t, h, slotConfig(), fileNames(saved))
	r := recvChat(stream, chatResult{})
	if r.err != nil || r.done == nil || r.done.GetWaitedMs() <= 0 {
		t.Fatalf("after the reload: %+v", r)
	}
}

func TestSlotSaveKeepsTheMostRecentWithinTheBudget(t *testing.T) {
	// About 528 bytes a token with the tiny model: the newer, 1,500-token conversation fits in
	// 1 MB, the two together do not.
	h := newHarness(t, harnessOpts{slotBudget: 1_000_000})
	h.addModel("m", ggufgen.Config{Seed: 1, Context: slotCtx})
	cfg := slotConfig()
	cfg.ParallelSlots = 2
	info := h.start(cfg).GetInfo()
	c := direct(t, info)
	older := "older " + longPrefix[:len(longPrefix)*4/10]
	newer := "newer " + longPrefix[:len(longPrefix)*6/10]
	turn(t, c, nil, older)
	tm, _ := turn(t, c, nil, newer)
	if tm.CacheN > 100 {
		t.Fatalf("the second conversation reused the first's slot (cache_n %d)", tm.CacheN)
	}
	saved := offload(t, h)
	if len(saved.GetSlots()) != 1 || len(saved.GetSkipped()) != 1 ||
		!strings.Contains(saved.GetSkipped()[0].GetReason(), "over the slot size budget") || saved.GetBytes() > 1_000_000 {
		t.Fatalf("save within the budget: %v", saved)
	}
	if saved.GetSlots()[0].GetTokens() < int64(tm.PromptN) {
		t.Fatalf("kept the older conversation: %v (newer had %d prompt tokens)", saved, tm.PromptN)
	}
	res := startRestoring(t, h, cfg, fileNames(saved))
	if len(res.GetSlotRestore().GetSlots()) != 1 {
		t.Fatalf("restore: %v", res.GetSlotRestore())
	}
	tm, _ = turn(t, direct(t, res.GetInfo()), []llamaclient.Message{{Role: "user", Content: newer}}, "next")
	if tm.CacheN < 1000 {
		t.Fatalf("the newer conversation was not restored: prompt_n %d, cache_n %d", tm.PromptN, tm.CacheN)
	}
}

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	commonv1 "github.com/genailab/genailab/gen/common/v1"
	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/pkg/ggufgen"
	"github.com/genailab/genailab/pkg/modelstore"
)

// Issue 17: an orchestrator SIGKILLed mid-offload restarts, reloads the LLM and restores the
// conversation's KV cache the LLM service saved at the stop (the saved state names the files).

// llamaTurn sends one non-streamed chat turn straight to llama-server and returns its timings.
func llamaTurn(t *testing.T, base string, msgs []map[string]string) (promptN, cacheN int) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"messages": msgs, "max_tokens": 4, "temperature": 0})
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/chat/completions", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Timings struct {
			PromptN int `json:"prompt_n"`
			CacheN  int `json:"cache_n"`
		} `json:"timings"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&out) != nil {
		t.Fatalf("chat: HTTP %d", resp.StatusCode)
	}
	return out.Timings.PromptN, out.Timings.CacheN
}

func TestSIGKILLMidOffloadThenRestartRestoresTheSlots(t *testing.T) {
	s := newStack(t, stackOptions{Budget: 1})
	// A model and context that hold a 2,251-token conversation, added to the LLM service's store.
	store, err := modelstore.Open(modelstore.Options{DataDir: filepath.Join(s.dir, "data"), Type: modelstore.TypeLLM})
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(s.dir, "long.gguf")
	if err := ggufgen.WriteFile(src, ggufgen.Config{Seed: 1, Context: 4096}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Import(context.Background(), "long", "tiny model with a 4096-token context", src); err != nil {
		t.Fatal(err)
	}
	cfg := &llmv1.LLMConfig{ModelId: "long", ContextSize: 4096, ParallelSlots: 1, Threads: llmThreads}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rs, err := s.llm.Restart(ctx, &llmv1.RestartRequest{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	words := make([]string, 320)
	for i := range words {
		words[i] = fmt.Sprintf("word%d", i%97)
	}
	conv := []map[string]string{{"role": "user", "content": strings.Join(words, " ")}}
	if p, _ := llamaTurn(t, rs.GetInfo().GetBaseUrl(), conv); p < 2000 {
		t.Fatalf("first turn processed %d prompt tokens", p)
	}

	stream, err := s.orch.GenerateImage(context.Background(), &orchestratorv1.GenerateImageRequest{Params: image(longSteps)})
	if err != nil {
		t.Fatal(err)
	}
	id := recvUntilStep(t, stream, 1)
	st, err := s.orch.GetSavedState(context.Background(), &orchestratorv1.GetSavedStateRequest{})
	if err != nil || len(st.GetStates()) != 1 || len(st.GetStates()[0].GetSlotFiles()) != 1 {
		t.Fatalf("saved state mid-offload: %v %v", st.GetStates(), err)
	}
	s.procs["orchestrator"].kill()
	s.startOrchestrator()
	ev := s.events.wait(t, evRelDone, id, reloadWithin)
	if ev.GetValues()["slots_restored"] != 1 || ev.GetValues()["tokens_restored"] < 2000 {
		t.Fatalf("reload after the restart: %v %v", ev.GetMessage(), ev.GetValues())
	}
	info := s.llmInfo()
	if info.GetStatus() != commonv1.ServerStatus_SERVER_STATUS_RUNNING {
		t.Fatalf("LLM %s after the reload", info.GetStatus())
	}
	conv = append(conv, map[string]string{"role": "user", "content": "and then?"})
	if p, c := llamaTurn(t, info.GetBaseUrl(), conv); c < 2000 || p > 200 {
		t.Fatalf("after the restored reload: prompt_n %d, cache_n %d; want the prefix from the restored cache", p, c)
	}
}

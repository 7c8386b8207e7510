package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	commonv1 "github.com/genailab/genailab/gen/common/v1"
	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/pkg/modelstore"
)

// TestFiftyConcurrentImageRequestsAllAnsweredInOrder is the fault suite's "50 concurrent
// image requests" (issue 14): 50 seed-contract requests at once through the gateway, on
// the real stable-diffusion.cpp (sd-server: the model loaded once; 64x64, 1 step, one
// thread) with every image forcing an offload of the real LLM. All 50 are answered 200
// with their own seed (0 lost, none refused: the queue holds them all), the orchestrator
// stored 50 succeeded jobs that ran one at a time in submission order (FIFO), and at the
// end the LLM is back, healthy, answering a chat, with no saved state left. The figures
// (wall time, slowest answer) are logged.
func TestFiftyConcurrentImageRequestsAllAnsweredInOrder(t *testing.T) {
	const n = 50
	s := newStack(t, stackOptions{Gateway: true, QueueSize: 64, Budget: 1, Mode: diffusionv1.EngineMode_ENGINE_MODE_SERVER})
	type answer struct {
		code int
		seed float64
		body string
		took time.Duration
	}
	answers := make([]answer, n)
	began := time.Now()
	var wg sync.WaitGroup
	for i := range answers {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			body := fmt.Sprintf(`{"prompt":"request %d","width":64,"height":64,"steps":1,"seed":%d}`, i, 2000+i)
			t0 := time.Now()
			resp, err := http.Post(s.gateway+"/v1/images/generations", "application/json", strings.NewReader(body))
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			var out map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&out)
			a := answer{code: resp.StatusCode, took: time.Since(t0)}
			if v, ok := out["seed"].(float64); ok {
				a.seed = v
			}
			if resp.StatusCode != 200 {
				a.body = fmt.Sprint(out)
			}
			answers[i] = a
		}(i)
	}
	wg.Wait()
	wall := time.Since(began)
	var slowest time.Duration
	for i, a := range answers {
		if a.code != 200 || a.seed != float64(2000+i) {
			t.Errorf("request %d: %d seed %v %s", i, a.code, a.seed, a.body)
		}
		slowest = max(slowest, a.took)
	}
	if t.Failed() {
		t.FailNow()
	}

	list, err := s.orch.ListJobs(context.Background(), &orchestratorv1.ListJobsRequest{PageSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Jobs) != n {
		t.Fatalf("%d jobs stored for %d requests", len(list.Jobs), n)
	}
	// Job ids sort by submission; each job started only after the one submitted before it
	// finished.
	jobs := list.Jobs
	sort.Slice(jobs, func(i, j int) bool { return jobs[i].Id < jobs[j].Id })
	for i, j := range jobs {
		if j.Status != orchestratorv1.JobStatus_JOB_STATUS_SUCCEEDED {
			t.Fatalf("job %s: %s %s", j.Id, j.Status, j.Error)
		}
		if i > 0 && j.StartedAt.AsTime().Before(jobs[i-1].FinishedAt.AsTime().Add(-time.Millisecond)) {
			t.Fatalf("job %s (submitted %d.) started %v before job %s (submitted %d.) finished %v: not FIFO",
				j.Id, i+1, j.StartedAt.AsTime(), jobs[i-1].Id, i, jobs[i-1].FinishedAt.AsTime())
		}
	}
	// Every offload has its reload: the event stream says so (it may lag the answers).
	waitNotBusy(t, s)
	offloads := s.events.waitBalanced(t, evOffStart, evRelDone, reloadWithin)
	if offloads == 0 {
		t.Fatalf("no offload: %v", s.events.types(""))
	}
	s.requireLLMHealthy()
	s.requireNoSavedState()
	t.Logf("%d concurrent requests: %d answered 200, 0 lost, FIFO; %d offload(s); wall %s, slowest answer %s",
		n, n, offloads, wall.Round(time.Millisecond), slowest.Round(time.Millisecond))
}

// waitBalanced waits until as many events of type closing as of type opening have been
// seen (each offload its reload), up to d, and returns the count.
func (l *eventLog) waitBalanced(t testing.TB, opening, closing orchestratorv1.EventType, d time.Duration) int {
	t.Helper()
	deadline := time.After(d)
	for {
		l.mu.Lock()
		opened, closed := 0, 0
		for _, e := range l.events {
			switch e.Type {
			case opening:
				opened++
			case closing:
				closed++
			}
		}
		ch := l.change
		l.mu.Unlock()
		if opened == closed {
			return opened
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("%d %s but %d %s within %s", opened, opening, closed, closing, d)
			return 0
		}
	}
}

// TestGatewayHealthStaysOKDuringAnLLMCrashLoop is the leftover of issue 14's "the LLM must
// come back": while the real llama-server crash loops (its model file gone, every automatic
// restart failing), the gateway's GET /health keeps the seed contract's exact body,
// {"status":"ok","busy":false}: it is the image server's health, and images do not need
// the LLM running. What is wrong is said beside it, in the header the contract leaves
// free (Grpc-Metadata-Genailab-Health-Detail: "llm: crash looping: ..."), and gone again
// once the model is back and the LLM restarted by itself.
func TestGatewayHealthStaysOKDuringAnLLMCrashLoop(t *testing.T) {
	s := newStack(t, stackOptions{Gateway: true, StandIn: true})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := s.llm.Restart(ctx, &llmv1.RestartRequest{Config: &llmv1.LLMConfig{ModelId: tinyModel, ContextSize: 256, Threads: llmThreads, AutoRestart: true}})
	if err != nil {
		t.Fatal(err)
	}
	store, err := modelstore.Open(modelstore.Options{DataDir: filepath.Join(s.dir, "data"), Type: modelstore.TypeLLM})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := store.Get(ctx, tinyModel)
	if err != nil {
		t.Fatal(err)
	}
	model, err := store.FilePath(tinyModel, rec.MainFile().Name)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(model, model+".away"); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(int(res.GetInfo().GetPid()), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the LLM crash looping", 60*time.Second, func() bool {
		info := s.llmInfo()
		return info.GetHealth() == commonv1.HealthStatus_HEALTH_STATUS_ERROR && strings.Contains(info.GetLastError(), "crash looping")
	})
	health := func() (int, map[string]any, string) {
		resp, err := http.Get(s.gateway + "/health")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var body map[string]any
		if err := json.Unmarshal(b, &body); err != nil {
			t.Fatalf("/health body %q: %v", b, err)
		}
		return resp.StatusCode, body, resp.Header.Get("Grpc-Metadata-Genailab-Health-Detail")
	}
	seed := map[string]any{"status": "ok", "busy": false}
	code, body, detail := health()
	if code != 200 || !maps.Equal(body, seed) {
		t.Fatalf("/health during the crash loop: %d %v, want 200 %v", code, body, seed)
	}
	if !strings.Contains(detail, "llm: crash looping: llama-server failed") {
		t.Fatalf("/health detail during the crash loop: %q", detail)
	}
	t.Logf("/health during the crash loop: %d %v, detail %q", code, body, detail)

	if err := os.Rename(model+".away", model); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the LLM back by itself", 6*time.Minute, func() bool {
		info := s.llmInfo()
		return info.GetStatus() == commonv1.ServerStatus_SERVER_STATUS_RUNNING && info.GetHealth() == commonv1.HealthStatus_HEALTH_STATUS_OK
	})
	if code, body, detail = health(); code != 200 || !maps.Equal(body, seed) || detail != "" {
		t.Fatalf("/health after the recovery: %d %v, detail %q", code, body, detail)
	}
}

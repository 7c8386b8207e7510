package e2e

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	commonv1 "github.com/genailab/genailab/gen/common/v1"
	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
)

const (
	evQueued     = orchestratorv1.EventType_EVENT_TYPE_JOB_QUEUED
	evStarted    = orchestratorv1.EventType_EVENT_TYPE_JOB_STARTED
	evPlaced     = orchestratorv1.EventType_EVENT_TYPE_JOB_PLACED
	evOffStart   = orchestratorv1.EventType_EVENT_TYPE_OFFLOAD_STARTED
	evOffDone    = orchestratorv1.EventType_EVENT_TYPE_OFFLOAD_FINISHED
	evRelStart   = orchestratorv1.EventType_EVENT_TYPE_RELOAD_STARTED
	evRelDone    = orchestratorv1.EventType_EVENT_TYPE_RELOAD_FINISHED
	evFinished   = orchestratorv1.EventType_EVENT_TYPE_JOB_FINISHED
	evFailed     = orchestratorv1.EventType_EVENT_TYPE_JOB_FAILED
	evCancelled  = orchestratorv1.EventType_EVENT_TYPE_JOB_CANCELLED
	reloadWithin = 60 * time.Second
	// longSteps make a real generation that lasts long enough (~0.3–1 s a step at 128x128 here)
	// to be cancelled, or its orchestrator killed, mid-sampling.
	longSteps = 40
)

// image is a 128x128 request. On the real engine with the tiny model a few steps take seconds
// (model load included); the tests that act mid-generation use longSteps and act once step 1
// has been seen.
func image(steps int32) *diffusionv1.ImageParams {
	return &diffusionv1.ImageParams{Prompt: "a lighthouse at dusk", Width: proto.Int32(128), Height: proto.Int32(128), Steps: proto.Int32(steps), Seed: ptr(int64(7))}
}

func ptr[T any](v T) *T { return &v }

func (s *stack) llmInfo() *llmv1.LLMInfo {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := s.llm.GetInfo(ctx, &llmv1.GetInfoRequest{})
	if err != nil {
		s.t.Fatal(err)
	}
	return r.Info
}

// requireLLMHealthy checks that the LLM runs, is healthy and answers a chat.
func (s *stack) requireLLMHealthy() {
	t := s.t
	t.Helper()
	info := s.llmInfo()
	if info.Status != commonv1.ServerStatus_SERVER_STATUS_RUNNING || info.Health != commonv1.HealthStatus_HEALTH_STATUS_OK || info.Offloaded {
		t.Fatalf("LLM status %s health %s offloaded %v", info.Status, info.Health, info.Offloaded)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, err := s.llm.Chat(ctx, &llmv1.ChatRequest{Messages: []*llmv1.ChatMessage{{Role: "user", Content: "hi"}}, MaxTokens: 4})
	if err != nil {
		t.Fatal(err)
	}
	for {
		m, err := stream.Recv()
		if err != nil {
			t.Fatalf("chat after reload: %v", err)
		}
		if m.GetDone() != nil {
			return
		}
	}
}

func (s *stack) requireNoSavedState() {
	s.t.Helper()
	r, err := s.orch.GetSavedState(context.Background(), &orchestratorv1.GetSavedStateRequest{})
	if err != nil || len(r.States) != 0 {
		s.t.Fatalf("saved state: %v %v", r.GetStates(), err)
	}
}

// subsequence reports whether want appears in got in order (other events may interleave).
func subsequence(got, want []orchestratorv1.EventType) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}

func TestForcedOffloadStopsTheLLMDuringGenerationAndReloadsIt(t *testing.T) {
	s := newStack(t, stackOptions{Budget: 1})
	before := s.llmInfo()
	wn, err := s.orch.WouldNeedOffload(context.Background(), &orchestratorv1.WouldNeedOffloadRequest{Params: image(4)})
	if err != nil || !wn.NeedsOffload || wn.MemoryKind != orchestratorv1.MemoryKind_MEMORY_KIND_RAM || wn.BudgetBytes != 1 || !wn.LlmRunning || wn.LlmReleaseBytes == 0 {
		t.Fatalf("would need offload: %v %v", wn, err)
	}
	stream, err := s.orch.GenerateImage(context.Background(), &orchestratorv1.GenerateImageRequest{Params: image(4)})
	if err != nil {
		t.Fatal(err)
	}
	var jobID string
	var sawStoppedDuringProgress bool
	var result *diffusionv1.ImageResult
	var progress int
	var steps []int32
	for {
		m, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch p := m.Payload.(type) {
		case *orchestratorv1.GenerateImageResponse_JobId:
			jobID = p.JobId
		case *orchestratorv1.GenerateImageResponse_Progress:
			progress++
			if p.Progress.Stage == diffusionv1.Stage_STAGE_SAMPLING && p.Progress.Step > 0 && (len(steps) == 0 || steps[len(steps)-1] != p.Progress.Step) {
				steps = append(steps, p.Progress.Step)
			}
			if p.Progress.Stage == diffusionv1.Stage_STAGE_SAMPLING && !sawStoppedDuringProgress {
				info := s.llmInfo()
				sawStoppedDuringProgress = info.Status == commonv1.ServerStatus_SERVER_STATUS_STOPPED && info.Offloaded
				if !sawStoppedDuringProgress {
					t.Fatalf("LLM during generation: %s offloaded %v", info.Status, info.Offloaded)
				}
				// The saved state is in the database while the LLM is down.
				st, err := s.orch.GetSavedState(context.Background(), &orchestratorv1.GetSavedStateRequest{})
				if err != nil || len(st.States) != 1 || st.States[0].LlmConfig.GetModelId() != tinyModel || !st.States[0].WasRunning {
					t.Fatalf("saved state during offload: %v %v", st.GetStates(), err)
				}
			}
		case *orchestratorv1.GenerateImageResponse_Result:
			result = p.Result
		}
	}
	// The real engine made it (not the demo), and every sampling step reached the client.
	if result == nil || result.Width != 128 || result.Seed != 7 || result.DemoEngine || len(result.Png) < 8 || progress == 0 || !sawStoppedDuringProgress {
		t.Fatalf("result %v (demo %v) progress %d stopped %v", result != nil, result.GetDemoEngine(), progress, sawStoppedDuringProgress)
	}
	if fmt.Sprint(steps) != "[1 2 3 4]" {
		t.Fatalf("sampling steps through the orchestrator %v, want [1 2 3 4]", steps)
	}
	s.events.wait(t, evRelDone, jobID, reloadWithin)
	s.requireLLMHealthy()
	s.requireNoSavedState()
	if after := s.llmInfo(); after.Pid == before.Pid {
		t.Fatalf("the LLM process was not restarted (pid %d)", after.Pid)
	}
	got := s.events.types(jobID)
	want := []orchestratorv1.EventType{evQueued, evStarted, evPlaced, evOffStart, evOffDone, evRelStart, evRelDone}
	if !subsequence(got, want) || !subsequence(got, []orchestratorv1.EventType{evOffDone, evFinished}) {
		t.Fatalf("events %v, want %v in order", got, want)
	}
	// The LLM service's own lifecycle is relayed too: stopped for the offload, then ready.
	s.events.wait(t, orchestratorv1.EventType_EVENT_TYPE_LLM_STOPPED, "", 10*time.Second)
	all := s.events.types("")
	if !subsequence(all, []orchestratorv1.EventType{evOffStart, orchestratorv1.EventType_EVENT_TYPE_LLM_STOPPED, evRelStart, orchestratorv1.EventType_EVENT_TYPE_LLM_STARTED}) {
		t.Fatalf("lifecycle events %v", all)
	}
	job, err := s.orch.GetJob(context.Background(), &orchestratorv1.GetJobRequest{Id: jobID})
	if err != nil || !job.Job.Offloaded || job.Job.Status != orchestratorv1.JobStatus_JOB_STATUS_SUCCEEDED {
		t.Fatalf("job %v %v", job.GetJob(), err)
	}
	waitNotBusy(t, s)
}

func TestNoOffloadWhenTheBudgetAllowsIt(t *testing.T) {
	s := newStack(t, stackOptions{})
	before := s.llmInfo()
	wn, err := s.orch.WouldNeedOffload(context.Background(), &orchestratorv1.WouldNeedOffloadRequest{Params: image(4)})
	if err != nil || wn.NeedsOffload || wn.Explanation == "" {
		t.Fatalf("would need offload: %v %v", wn, err)
	}
	res, err := s.orch.CreateImage(context.Background(), &orchestratorv1.CreateImageRequest{Prompt: "a fox", Width: proto.Int32(128), Height: proto.Int32(64), Steps: proto.Int32(4), Seed: ptr(int64(11))})
	if err != nil || res.Width != 128 || res.Height != 64 || res.Seed != 11 || res.Format != "png" {
		t.Fatalf("create image: %v %v", res, err)
	}
	after := s.llmInfo()
	if after.Pid != before.Pid || after.Status != commonv1.ServerStatus_SERVER_STATUS_RUNNING {
		t.Fatalf("LLM touched: pid %d → %d, %s", before.Pid, after.Pid, after.Status)
	}
	if s.events.has(evOffStart, "") || s.events.has(evRelStart, "") {
		t.Fatalf("offload events without offload: %v", s.events.types(""))
	}
	s.requireNoSavedState()
}

func waitNotBusy(t *testing.T, s *stack) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		h, err := s.orch.GetHealth(context.Background(), &orchestratorv1.GetHealthRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if h.Status == "ok" && !h.Busy {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("busy stuck")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var _ = slices.Equal[[]int]

func TestEngineCrashIsAnEvent(t *testing.T) {
	s := newStack(t, stackOptions{})
	pid := s.llmInfo().Pid
	if err := syscall.Kill(int(pid), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	ev := s.events.wait(t, orchestratorv1.EventType_EVENT_TYPE_LLM_CRASHED, "", 20*time.Second)
	if !strings.Contains(ev.Message, "SIGKILL") {
		t.Fatalf("crash event %q", ev.Message)
	}
}

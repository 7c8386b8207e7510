package genailab_test

import (
	"bytes"
	"context"
	"errors"
	"image/png"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	genailab "github.com/genailab/genailab/clients/go"
	commonv1 "github.com/genailab/genailab/gen/common/v1"
	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
)

// genMu serialises the tests that generate: the engine takes one image at a time.
var genMu sync.Mutex

// The sizes of a generation the tests cancel half-way: the real stable-diffusion.cpp takes
// about 0.1-0.3 s a step at 64x64 on two cores and more at 128x128, so 60 steps leave seconds
// to act once the first step shows (the stand-in is slowed down to demoStepMS a step).
const (
	cancelSize  = 128
	cancelSteps = 60
)

// startDiffusion makes sure the diffusion engine runs (CLI mode) with the stack's model:
// genailab up starts it at boot, so a Start is normally refused as "already running".
func startDiffusion(t *testing.T, ctx context.Context, c *genailab.Client) {
	t.Helper()
	_, err := c.Diffusion().Start(ctx, &diffusionv1.StartRequest{Config: &diffusionv1.DiffusionConfig{ModelId: diffusionModel}})
	if err != nil && (status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "already running")) {
		t.Fatalf("start diffusion: %v", err)
	}
	info, err := c.Diffusion().GetInfo(ctx, &diffusionv1.GetInfoRequest{})
	if err != nil || info.GetInfo().GetStatus() != commonv1.ServerStatus_SERVER_STATUS_RUNNING ||
		info.GetInfo().GetModelId() != diffusionModel || info.GetInfo().GetDemoEngine() != (sd == nil) {
		t.Fatalf("diffusion not running with %s (demo engine %v): %v %v", diffusionModel, sd == nil, info, err)
	}
}

func TestGenerateImageStreamsProgressThenTheImage(t *testing.T) {
	c := dial(t)
	ctx := testContext(t, 3*time.Minute)
	genMu.Lock()
	defer genMu.Unlock()
	startDiffusion(t, ctx, c)

	var events []genailab.Event
	seed := int64(4242)
	res, err := c.GenerateImage(ctx, &diffusionv1.ImageParams{Prompt: "a red fox", Width: proto.Int32(64), Height: proto.Int32(128), Steps: proto.Int32(3), Seed: &seed, Sampler: "euler"},
		func(e genailab.Event) { events = append(events, e) })
	if err != nil {
		t.Fatal(err)
	}
	if len(events) == 0 || events[0].JobID == "" || events[0].JobID != res.JobID {
		t.Fatalf("first event %+v, want the job id %q", events, res.JobID)
	}
	var steps []int32
	var last *diffusionv1.Progress
	var started bool
	for _, e := range events[1:] {
		n := 0
		for _, set := range []bool{e.JobID != "", e.Queue != nil, e.Event != nil, e.Progress != nil} {
			if set {
				n++
			}
		}
		if n != 1 {
			t.Errorf("event %+v: want exactly one field set", e)
		}
		if e.Progress != nil {
			if e.Progress.GetStage() == diffusionv1.Stage_STAGE_SAMPLING && e.Progress.GetStep() > 0 {
				steps = append(steps, e.Progress.GetStep())
			}
			last = e.Progress
		}
		if e.Event != nil && e.Event.GetType() == orchestratorv1.EventType_EVENT_TYPE_JOB_STARTED {
			started = true
		}
	}
	// Progress is the latest state (updates may be coalesced): some sampling steps, then done at 3/3.
	if len(steps) == 0 || last.GetStage() != diffusionv1.Stage_STAGE_DONE || last.GetStep() != 3 || last.GetTotalSteps() != 3 || last.GetPercent() != 100 || !started {
		t.Errorf("progress: sampling steps %v, last %v, job started event %v", steps, last, started)
	}
	for i := 1; i < len(steps); i++ {
		if steps[i] < steps[i-1] {
			t.Errorf("steps go backwards: %v", steps)
		}
	}
	img, err := png.Decode(bytes.NewReader(res.Image.GetPng()))
	if err != nil {
		t.Fatalf("result is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 64 || b.Dy() != 128 || res.Image.GetSeed() != seed || res.Image.GetDemoEngine() != (sd == nil) ||
		res.Image.GetParams().GetSampler() != "euler" {
		t.Errorf("image %v seed %d demo %v params %v", b, res.Image.GetSeed(), res.Image.GetDemoEngine(), res.Image.GetParams())
	}
	job, err := c.Orchestrator().GetJob(ctx, &orchestratorv1.GetJobRequest{Id: res.JobID})
	if err != nil || job.GetJob().GetStatus() != orchestratorv1.JobStatus_JOB_STATUS_SUCCEEDED {
		t.Errorf("job after success: %v %v", job, err)
	}
}

func TestGenerateImageBadParamsKeepTheStatus(t *testing.T) {
	c := dial(t)
	ctx := testContext(t, 30*time.Second)
	_, err := c.GenerateImage(ctx, &diffusionv1.ImageParams{Prompt: "x", Width: proto.Int32(65)}, nil)
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("width 65: %v, want InvalidArgument", err)
	}
}

// TestGenerateImageCancelledByTheCallerCancelsTheJob gives up half-way: the stream is
// closed, the job is cancelled on the server and the engine is no longer busy.
func TestGenerateImageCancelledByTheCallerCancelsTheJob(t *testing.T) {
	c := dial(t)
	ctx := testContext(t, 3*time.Minute)
	genMu.Lock()
	defer genMu.Unlock()
	startDiffusion(t, ctx, c)

	gctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var jobID string
	var cancelledAt time.Time
	start := time.Now()
	_, err := c.GenerateImage(gctx, &diffusionv1.ImageParams{Prompt: "slow", Width: proto.Int32(cancelSize), Height: proto.Int32(cancelSize), Steps: proto.Int32(cancelSteps)}, func(e genailab.Event) {
		if e.JobID != "" {
			jobID = e.JobID
		}
		if e.Progress.GetStage() == diffusionv1.Stage_STAGE_SAMPLING && e.Progress.GetStep() >= 1 && cancelledAt.IsZero() {
			cancelledAt = time.Now()
			t.Logf("cancelling at step %d/%d, %s after the request", e.Progress.GetStep(), cancelSteps, cancelledAt.Sub(start).Round(time.Millisecond))
			cancel()
		}
	})
	var je *genailab.JobError
	if !errors.As(err, &je) || !je.Abandoned || je.CancelErr != nil || je.JobID != jobID || !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v (%#v), want an abandoned JobError for %s wrapping context.Canceled", err, je, jobID)
	}
	// The orchestrator ends the job; the engine stops generating (the real sd-cli is killed).
	deadline := time.Now().Add(30 * time.Second)
	for {
		job, jerr := c.Orchestrator().GetJob(ctx, &orchestratorv1.GetJobRequest{Id: jobID})
		info, ierr := c.Diffusion().GetInfo(ctx, &diffusionv1.GetInfoRequest{})
		health, herr := c.Orchestrator().GetHealth(ctx, &orchestratorv1.GetHealthRequest{})
		if jerr == nil && ierr == nil && herr == nil && job.GetJob().GetStatus() == orchestratorv1.JobStatus_JOB_STATUS_CANCELLED &&
			!info.GetInfo().GetBusy() && !health.GetBusy() {
			if s := job.GetJob().GetProgress().GetStep(); s >= cancelSteps {
				t.Errorf("job ran to the end (step %d) although cancelled", s)
			}
			t.Logf("job cancelled at step %d, engine idle %s after the cancel", job.GetJob().GetProgress().GetStep(), time.Since(cancelledAt).Round(time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after cancel: job %v (%v), diffusion %v (%v), health %v (%v)", job, jerr, info, ierr, health, herr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestJobErrorMessages(t *testing.T) {
	e := &genailab.JobError{JobID: "j1", Err: context.Canceled, Abandoned: true}
	if got := e.Error(); got != "job j1: context canceled (cancelled on the server)" {
		t.Errorf("got %q", got)
	}
	e.CancelErr = status.Error(codes.Unavailable, "down")
	if got := e.Error(); got != "job j1: context canceled; cancelling it on the server failed: rpc error: code = Unavailable desc = down" {
		t.Errorf("got %q", got)
	}
	e2 := &genailab.JobError{JobID: "j2", Err: status.Error(codes.Internal, "engine crashed")}
	if status.Code(e2) != codes.Internal {
		t.Errorf("status of a wrapped server error: %v", status.Code(e2))
	}
}

// TestCancellingTheRunningJobRunsTheQueuedOne cancels a job while another waits behind it: the
// queued job then runs on the same engine and succeeds. (The real sd-cli takes tens of
// milliseconds to exit after the cancel, where the stand-in was gone at once: the next job
// must not find the engine still busy.)
func TestCancellingTheRunningJobRunsTheQueuedOne(t *testing.T) {
	c := dial(t)
	ctx := testContext(t, 3*time.Minute)
	genMu.Lock()
	defer genMu.Unlock()
	startDiffusion(t, ctx, c)

	orch := c.Orchestrator()
	first, err := orch.SubmitJob(ctx, &orchestratorv1.SubmitJobRequest{Params: &diffusionv1.ImageParams{Prompt: "first", Width: proto.Int32(cancelSize), Height: proto.Int32(cancelSize), Steps: proto.Int32(cancelSteps)}})
	if err != nil {
		t.Fatal(err)
	}
	id1 := first.GetJob().GetId()
	waitJob(t, ctx, c, id1, "sampling", func(j *orchestratorv1.Job) bool {
		return j.GetStatus() == orchestratorv1.JobStatus_JOB_STATUS_RUNNING && j.GetProgress().GetStage() == diffusionv1.Stage_STAGE_SAMPLING && j.GetProgress().GetStep() >= 1
	})
	seed := int64(99)
	second, err := orch.SubmitJob(ctx, &orchestratorv1.SubmitJobRequest{Params: &diffusionv1.ImageParams{Prompt: "second", Width: proto.Int32(64), Height: proto.Int32(64), Steps: proto.Int32(2), Seed: &seed}})
	if err != nil {
		t.Fatal(err)
	}
	id2 := second.GetJob().GetId()
	if st := second.GetJob().GetStatus(); st != orchestratorv1.JobStatus_JOB_STATUS_QUEUED {
		t.Fatalf("second job %s, want queued behind the first", st)
	}
	// CancelJob of a running job answers once the job has ended (CANCELLED).
	if _, err := orch.CancelJob(ctx, &orchestratorv1.CancelJobRequest{Id: id1}); err != nil {
		t.Fatalf("cancel the running job: %v", err)
	}
	if j := waitJob(t, ctx, c, id1, "the cancelled job's end", ended); j.GetStatus() != orchestratorv1.JobStatus_JOB_STATUS_CANCELLED {
		t.Fatalf("the cancelled job: %v", j)
	}
	done := waitJob(t, ctx, c, id2, "the queued job's end", ended)
	if done.GetStatus() != orchestratorv1.JobStatus_JOB_STATUS_SUCCEEDED || done.GetResult().GetSeed() != seed ||
		done.GetResult().GetWidth() != 64 || done.GetResult().GetDemoEngine() != (sd == nil) {
		t.Fatalf("the job queued behind the cancelled one: %v", done)
	}
}

// ended tells a job that has finished (succeeded, failed or cancelled).
func ended(j *orchestratorv1.Job) bool {
	switch j.GetStatus() {
	case orchestratorv1.JobStatus_JOB_STATUS_QUEUED, orchestratorv1.JobStatus_JOB_STATUS_RUNNING:
		return false
	}
	return true
}

// waitJob polls a job until cond holds and returns it.
func waitJob(t *testing.T, ctx context.Context, c *genailab.Client, id, what string, cond func(*orchestratorv1.Job) bool) *orchestratorv1.Job {
	t.Helper()
	for {
		r, err := c.Orchestrator().GetJob(ctx, &orchestratorv1.GetJobRequest{Id: id})
		if err != nil {
			t.Fatalf("job %s (waiting for %s): %v", id, what, err)
		}
		if cond(r.GetJob()) {
			return r.GetJob()
		}
		select {
		case <-ctx.Done():
			t.Fatalf("job %s: no %s before the test's deadline: %v", id, what, r.GetJob())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

package cycle_test

// Regression tests of issue 14 item 10: an engine that keeps printing never tripped the
// stall timeout, so the job stayed RUNNING and the LLM offloaded indefinitely.

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	"github.com/genailab/genailab/pkg/grpcerr"
	"github.com/genailab/genailab/services/orchestrator/internal/cycle"
)

// runEndless runs an image on an engine that prints forever (mode) with the LLM offloaded
// for it, and checks what every deadline must do: the generation ends in time with
// DeadlineExceeded, its stream is cancelled (the diffusion service kills the engine then),
// and the LLM is reloaded with its saved state cleared. It returns the error.
func runEndless(t *testing.T, r *rig, mode string, within time.Duration) *cycle.DeadlineError {
	t.Helper()
	r.diff.mode, r.diff.killed = mode, make(chan struct{})
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := r.cycle.Run(ctx, "job-endless", &diffusionv1.ImageParams{Prompt: "fox", Width: proto.Int32(512), Height: proto.Int32(512), Steps: proto.Int32(3)}, cycle.Hooks{})
	took := time.Since(start)
	if ctx.Err() != nil {
		t.Fatalf("the generation was never ended by its deadline (%s)", took)
	}
	var de *cycle.DeadlineError
	if !errors.As(err, &de) || !errors.Is(err, cycle.ErrGenerationDeadline) || grpcerr.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("endless engine: %v (code %v), want a DeadlineError with code DeadlineExceeded", err, grpcerr.Code(err))
	}
	if took > within || took < de.Limit {
		t.Fatalf("ended after %s with a limit of %s, want between the limit and %s", took, de.Limit, within)
	}
	if out.Result != nil || !out.Offloaded {
		t.Fatalf("outcome %+v", out)
	}
	select {
	case <-r.diff.killed:
	case <-time.After(5 * time.Second):
		t.Fatal("the diffusion stream was not cancelled: the engine would go on")
	}
	waitReload(t, out)
	if !r.llm.isRunning() {
		t.Fatal("the LLM was not reloaded after the deadline")
	}
	if s, _ := r.db.SavedState(""); s != nil {
		t.Fatalf("saved state kept after the reload: %v", s)
	}
	t.Logf("%s: %v after %s, %d progress messages", mode, err, took.Round(time.Millisecond), r.diff.sent.Load())
	return de
}

// The default deadline, derived from the step time measured on this image: the engine
// repeats steps 1..3 of 3 every millisecond, forever.
func TestEndlessEngineOutputHitsTheDerivedDeadline(t *testing.T) {
	r := newRig(t, 1, cycle.Options{GenerationTimeoutMin: 150 * time.Millisecond, GenerationTimeoutMax: time.Minute})
	de := runEndless(t, r, "endless", 10*time.Second)
	if de.Limit != 150*time.Millisecond || !strings.Contains(de.Basis, "3 steps") || !strings.Contains(de.Basis, "measured on this image") {
		t.Fatalf("limit %s (%s), want the 150ms floor over a measured step time", de.Limit, de.Basis)
	}
	if de.TotalSteps != 3 || de.Step < 1 {
		t.Fatalf("steps %d of %d", de.Step, de.TotalSteps)
	}
	// Slower steps (40 ms): the deadline is the factor times the measured time, above the
	// floor: 4 × 3 steps × 40 ms ≈ 480 ms.
	r = newRig(t, 1, cycle.Options{GenerationTimeoutMin: 10 * time.Millisecond, GenerationTimeoutMax: time.Minute})
	r.diff.every = 40 * time.Millisecond
	de = runEndless(t, r, "endless", 10*time.Second)
	if de.Limit < 400*time.Millisecond || de.Limit > 3*time.Second {
		t.Fatalf("limit %s (%s), want about 4 × 3 × 40ms", de.Limit, de.Basis)
	}
}

// An engine that prints without ever reaching a sampling step, on a host with no step time
// measured yet: the hard cap ends it.
func TestEndlessEngineOutputHitsTheHardCap(t *testing.T) {
	r := newRig(t, 1, cycle.Options{GenerationTimeoutMax: 200 * time.Millisecond})
	de := runEndless(t, r, "loading", 10*time.Second)
	if de.Limit != 200*time.Millisecond || !strings.Contains(de.Basis, "hard cap") {
		t.Fatalf("limit %s (%s), want the 200ms hard cap", de.Limit, de.Basis)
	}
}

// -generation-timeout fixes the deadline.
func TestEndlessEngineOutputHitsTheFixedDeadline(t *testing.T) {
	r := newRig(t, 1, cycle.Options{GenerationTimeout: 120 * time.Millisecond})
	de := runEndless(t, r, "endless", 10*time.Second)
	if de.Limit != 120*time.Millisecond || !strings.Contains(de.Basis, "-generation-timeout") {
		t.Fatalf("limit %s (%s)", de.Limit, de.Basis)
	}
}

// After an image that completed, the next image's deadline starts from the step time
// measured then, before its own first step.
func TestDeadlineUsesTheStepTimeOfThePreviousImage(t *testing.T) {
	r := newRig(t, 1, cycle.Options{GenerationTimeoutMin: 100 * time.Millisecond, GenerationTimeoutMax: time.Minute})
	out, err := r.cycle.Run(context.Background(), "job-ok", params, cycle.Hooks{})
	if err != nil || out.Result == nil {
		t.Fatalf("a normal image: %v", err)
	}
	waitReload(t, out)
	de := runEndless(t, r, "loading", 10*time.Second)
	if de.Limit != 100*time.Millisecond || !strings.Contains(de.Basis, "previous image") {
		t.Fatalf("limit %s (%s), want the floor over the previous image's step time", de.Limit, de.Basis)
	}
}

// A normal image well within its deadline is not affected by it.
func TestNormalImageWithinItsDeadline(t *testing.T) {
	r := newRig(t, 1, cycle.Options{GenerationTimeout: 5 * time.Second})
	out, err := r.cycle.Run(context.Background(), "job-ok", params, cycle.Hooks{})
	if err != nil || out.Result == nil {
		t.Fatalf("image: %v", err)
	}
	waitReload(t, out)
}

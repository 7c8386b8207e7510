package cycle_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/genailab/genailab/services/orchestrator/internal/estimate"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/services/orchestrator/internal/cycle"
)

var params = &diffusionv1.ImageParams{Prompt: "a fox", Width: proto.Int32(512), Height: proto.Int32(512)}

const (
	tPlaced    = orchestratorv1.EventType_EVENT_TYPE_JOB_PLACED
	tOffStart  = orchestratorv1.EventType_EVENT_TYPE_OFFLOAD_STARTED
	tOffEnd    = orchestratorv1.EventType_EVENT_TYPE_OFFLOAD_FINISHED
	tRelStart  = orchestratorv1.EventType_EVENT_TYPE_RELOAD_STARTED
	tRelEnd    = orchestratorv1.EventType_EVENT_TYPE_RELOAD_FINISHED
	tRelFailed = orchestratorv1.EventType_EVENT_TYPE_RELOAD_FAILED
)

func waitReload(t *testing.T, out cycle.Outcome) {
	t.Helper()
	select {
	case <-out.ReloadDone:
	case <-time.After(10 * time.Second):
		t.Fatal("reload never ended")
	}
}

func TestOffloadPersistsBeforeStopGeneratesStoppedAndReloads(t *testing.T) {
	r := newRig(t, 1, cycle.Options{}) // a 1-byte budget forces the offload
	savedAtStop := make(chan bool, 1)
	r.llm.onStop = func() {
		s, _ := r.db.SavedState("")
		savedAtStop <- s != nil && s.GetLlmConfig().GetModelId() == "tiny"
	}
	r.diff.llmSeenD = make(chan bool, 1)
	var progress []int32
	out, err := r.cycle.Run(context.Background(), "job-1", params, cycle.Hooks{Progress: func(p *diffusionv1.Progress) { progress = append(progress, p.Step) }})
	if err != nil {
		t.Fatal(err)
	}
	if !out.Offloaded || out.Result == nil || fmt.Sprint(progress) != "[1 2 3]" {
		t.Fatalf("offloaded %v result %v progress %v", out.Offloaded, out.Result, progress)
	}
	if !<-savedAtStop {
		t.Fatal("the LLM was stopped before its state was saved")
	}
	if <-r.diff.llmSeenD {
		t.Fatal("the LLM was running during generation")
	}
	if req := r.llm.lastStopReq; !req.ForOffload || req.DrainTimeoutMs != 10000 {
		t.Fatalf("stop request %v", req)
	}
	waitReload(t, out)
	if !r.llm.isRunning() {
		t.Fatal("LLM not reloaded")
	}
	if r.llm.lastConfig.GetModelId() != "tiny" || r.llm.lastConfig.GetPort() != 4321 {
		t.Fatalf("reloaded with %v", r.llm.lastConfig)
	}
	if s, _ := r.db.SavedState(""); s != nil {
		t.Fatalf("saved state not cleared: %v", s)
	}
	want := []orchestratorv1.EventType{tPlaced, tOffStart, tOffEnd, tRelStart, tRelEnd}
	if got := r.types(t); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	r.ev.Flush() // events are written behind their emitters
	evs, _ := r.db.LastEvents(10)
	if evs[0].Values["required_bytes"] == 0 || evs[2].Values["freed_bytes"] != 2*GiB || evs[2].Values["confirmed"] != 1 {
		t.Fatalf("event numbers: placed %v offload finished %v", evs[0].Values, evs[2].Values)
	}
}

func TestNoOffloadWhenTheImageFits(t *testing.T) {
	r := newRig(t, 0, cycle.Options{})
	out, err := r.cycle.Run(context.Background(), "job-1", params, cycle.Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	if out.Offloaded || r.llm.stops != 0 || r.llm.starts != 0 || out.Decision.NeedsOffload {
		t.Fatalf("offloaded %v stops %d starts %d", out.Offloaded, r.llm.stops, r.llm.starts)
	}
	if got := r.types(t); !slices.Equal(got, []orchestratorv1.EventType{tPlaced}) {
		t.Fatalf("events %v", got)
	}
	// The placement's gathering and the generation are timed (the stage metrics).
	evs, _ := r.db.LastEvents(1)
	if g := evs[0].Values["gather_ms"]; g <= 0 || out.Generation <= 0 || evs[0].Values["required_bytes"] == 0 {
		t.Fatalf("gather_ms %v, generation %v (placed %v)", g, out.Generation, evs[0].Values)
	}
}

func TestEveryFailurePathReloads(t *testing.T) {
	t.Run("engine failure", func(t *testing.T) {
		r := newRig(t, 1, cycle.Options{})
		r.diff.mode = "fail"
		out, err := r.cycle.Run(context.Background(), "j", params, cycle.Hooks{})
		if status.Code(err) != codes.Internal {
			t.Fatalf("error %v", err)
		}
		waitReload(t, out)
		if !r.llm.isRunning() {
			t.Fatal("LLM not reloaded after an engine failure")
		}
		if s, _ := r.db.SavedState(""); s != nil {
			t.Fatal("saved state kept")
		}
	})
	t.Run("cancel", func(t *testing.T) {
		r := newRig(t, 1, cycle.Options{})
		r.diff.mode = "block"
		r.diff.started = make(chan struct{})
		ctx, cancel := context.WithCancel(context.Background())
		go func() { <-r.diff.started; cancel() }()
		out, err := r.cycle.Run(ctx, "j", params, cycle.Hooks{})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v", err)
		}
		waitReload(t, out)
		if !r.llm.isRunning() {
			t.Fatal("LLM not reloaded after a cancel")
		}
	})
}

func TestReloadRetriesWithBackoff(t *testing.T) {
	r := newRig(t, 1, cycle.Options{})
	r.llm.startFails = 2
	out, err := r.cycle.Run(context.Background(), "j", params, cycle.Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	waitReload(t, out)
	if !r.llm.isRunning() || r.llm.starts != 3 {
		t.Fatalf("running %v after %d starts", r.llm.isRunning(), r.llm.starts)
	}
	got := r.types(t)
	want := []orchestratorv1.EventType{tPlaced, tOffStart, tOffEnd, tRelStart, tRelFailed, tRelFailed, tRelEnd}
	if !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
}

func TestFailedReloadKeepsStateThenALaterReloadBringsTheLLMBack(t *testing.T) {
	r := newRig(t, 1, cycle.Options{ReloadTimeout: 100 * time.Millisecond})
	r.llm.startFails = 1 << 30
	out, err := r.cycle.Run(context.Background(), "j", params, cycle.Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	waitReload(t, out)
	s, _ := r.db.SavedState("")
	if s == nil || s.ReloadAttempts < 2 || s.LastReloadError == "" || s.Reason != "j" {
		t.Fatalf("saved state after failed reload: %v", s)
	}
	if r.llm.isRunning() {
		t.Fatal("LLM running although every start failed")
	}
	// Later (the host reachable again, or the orchestrator's next start) the registry
	// reloads from the saved state with Reload.
	r.llm.mu.Lock()
	r.llm.startFails = 0
	r.llm.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.cycle.Reload(ctx, s, nil); err != nil {
		t.Fatal(err)
	}
	if !r.llm.isRunning() {
		t.Fatal("the reload did not start the LLM")
	}
	if s, _ := r.db.SavedState(""); s != nil {
		t.Fatal("the reload did not clear the state")
	}
}

func TestReloadWhenTheLLMIsAlreadyBack(t *testing.T) {
	r := newRig(t, 0, cycle.Options{})
	saved := &orchestratorv1.SavedState{WasRunning: true, LlmConfig: r.llm.info().Config}
	if err := r.db.PutSavedState(saved); err != nil {
		t.Fatal(err)
	}
	if err := r.cycle.Reload(context.Background(), saved, nil); err != nil {
		t.Fatal(err)
	}
	if s, _ := r.db.SavedState(""); s != nil || r.llm.starts != 1 {
		t.Fatalf("state %v starts %d", s, r.llm.starts)
	}
}

// TestPeakIsLearntFromReadingsDuringTheGeneration: the diffusion engine's peak memory,
// read from the monitor during the generation, becomes the model's correction; the first
// reading is asked for only 1.5 intervals in, so that the reading the monitor hands a new
// stream at once (its sampler's latest, up to an interval old) is never from before the
// engine ran.
func TestPeakIsLearntFromReadingsDuringTheGeneration(t *testing.T) {
	const interval = 100 * time.Millisecond
	r := newRig(t, 0, cycle.Options{PeakInterval: interval})
	r.diff.mode, r.diff.release, r.diff.began = "done-then-result", make(chan struct{}), make(chan time.Time, 1)
	r.mon.readings, r.mon.subscribed = []uint64{3 * GiB, 5 * GiB, 4 * GiB}, make(chan time.Time, 1)
	go func() {
		for range 3 {
			<-r.readings
		}
		close(r.diff.release) // the result only once the readings arrived
	}()
	out, err := r.cycle.Run(context.Background(), "job-1", params, cycle.Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	// The meter's delay runs from the cycle's call, the engine's start is stamped in the
	// fake's handler after the stream opened (CI once saw 149.6 ms): the margin allows for
	// that opening, and a delay of one interval still fails.
	if began, subscribed := <-r.diff.began, <-r.mon.subscribed; subscribed.Sub(began) < interval+interval/4 {
		t.Fatalf("the monitor was read %v into the generation, before 1.25 intervals", subscribed.Sub(began))
	}
	c, err := r.db.Correction("demo")
	if err != nil {
		t.Fatal(err)
	}
	if want := estimate.Learn(0, 0, out.Decision.Image.TotalBytes, 5*GiB); c.Samples != 1 || c.DeltaBytes != want {
		t.Fatalf("correction %+v, want delta %v from the 5 GiB peak (estimate %d)", c, want, out.Decision.Image.TotalBytes)
	}
}

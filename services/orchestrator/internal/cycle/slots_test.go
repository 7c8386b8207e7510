package cycle_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/services/orchestrator/internal/cycle"
)

// Issue 17: the saved state names the slot files the LLM service saved, the reload restores
// them, and it starts as soon as the engine reported STAGE_DONE, before the image arrives.

func TestReloadRestoresTheSlotFilesOfTheSavedState(t *testing.T) {
	r := newRig(t, 1, cycle.Options{})
	r.llm.slotFiles = []string{"slot-0-1.bin", "slot-1-1.bin"}
	state := make(chan []string, 1)
	r.llm.startedCh = make(chan struct{}, 1)
	r.diff.llmSeenD = make(chan bool, 1)
	r.diff.started = make(chan struct{})
	go func() {
		<-r.diff.started
		s, _ := r.db.SavedState("")
		state <- s.GetSlotFiles()
	}()
	out, err := r.cycle.Run(context.Background(), "job-1", params, cycle.Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	<-r.diff.llmSeenD
	waitReload(t, out)
	if fromState := <-state; !slices.Equal(fromState, r.llm.slotFiles) {
		t.Fatalf("saved state names %v, want %v", fromState, r.llm.slotFiles)
	}
	if !slices.Equal(r.llm.lastRestore, r.llm.slotFiles) {
		t.Fatalf("Start restored %v, want %v", r.llm.lastRestore, r.llm.slotFiles)
	}
	r.ev.Flush() // events are written behind their emitters
	evs, _ := r.db.LastEvents(10)
	var off, rel map[string]float64
	var relMsg string
	for _, e := range evs {
		switch e.GetType() {
		case tOffEnd:
			off = e.GetValues()
		case tRelEnd:
			rel, relMsg = e.GetValues(), e.GetMessage()
		}
	}
	if off["slots_saved"] != 2 || rel == nil && t.Failed() || off["tokens_saved"] != 2300 || rel["slots_restored"] != 2 || rel["tokens_restored"] != 2300 || rel["down_ms"] <= 0 {
		t.Fatalf("offload values %v, reload values %v (events %v)", off, rel, r.types(t))
	}
	if !strings.Contains(relMsg, "2 conversations of 2 restored (2300 tokens") {
		t.Fatalf("reload message %q", relMsg)
	}
}

func TestCrashRestoreUsesTheSlotFilesOfTheSavedState(t *testing.T) {
	// What the host registry does after an orchestrator restart: Reload from the state a
	// killed orchestrator left in the database (it is read back, not kept in memory).
	r := newRig(t, 1, cycle.Options{})
	if _, err := r.llm.Stop(context.Background(), &llmv1.StopRequest{ForOffload: true}); err != nil {
		t.Fatal(err)
	}
	left := &orchestratorv1.SavedState{LlmConfig: &llmv1.LLMConfig{ModelId: "tiny"}, WasRunning: true,
		SavedAt: timestamppb.Now(), Reason: "job-1", SlotFiles: []string{"slot-0-7.bin"}}
	if err := r.db.PutSavedState(left); err != nil {
		t.Fatal(err)
	}
	stored, err := r.db.SavedState("")
	if err != nil || stored == nil {
		t.Fatalf("stored state: %v %v", stored, err)
	}
	if err := r.cycle.Reload(context.Background(), stored, nil); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.llm.lastRestore, []string{"slot-0-7.bin"}) {
		t.Fatalf("restored %v", r.llm.lastRestore)
	}
}

func TestReloadStartsAtStageDoneBeforeTheResult(t *testing.T) {
	r := newRig(t, 1, cycle.Options{})
	r.diff.mode = "done-then-result"
	r.diff.release = make(chan struct{})
	r.llm.startedCh = make(chan struct{}, 1)
	go func() {
		// The result is held back until the LLM has been started again.
		select {
		case <-r.llm.startedCh:
		case <-time.After(20 * time.Second):
		}
		close(r.diff.release)
	}()
	begin := time.Now()
	out, err := r.cycle.Run(context.Background(), "job-1", params, cycle.Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(begin) > 15*time.Second {
		t.Fatal("the result came only after the fallback: the reload did not start at STAGE_DONE")
	}
	waitReload(t, out)
	if out.Result == nil || !r.llm.isRunning() {
		t.Fatalf("result %v, llm running %v", out.Result, r.llm.isRunning())
	}
}

package server

import (
	"fmt"
	"slices"
	"testing"

	"github.com/genailab/genailab/services/diffusion/internal/engine"
	"github.com/genailab/genailab/services/diffusion/internal/sdprogress"
)

// Regression: the real sd.cpp prints its last step bar and "sampling completed" together; the
// latest-wins mailbox then carried step N only inside the decoding update, so clients never saw
// step N/N as its own message.
func TestLastSamplingStepIsNotLostInTheDecodingUpdate(t *testing.T) {
	b := newProgressBox()
	b.put(engine.Progress{Stage: sdprogress.StageSampling, Step: 3, TotalSteps: 4, Percent: 60})
	b.put(engine.Progress{Stage: sdprogress.StageSampling, Step: 4, TotalSteps: 4, Percent: 70})
	b.put(engine.Progress{Stage: sdprogress.StageDecoding, Step: 4, TotalSteps: 4, Percent: 80})
	var got []string
	for _, p := range b.take() {
		got = append(got, fmt.Sprintf("%s/%d", p.Stage, p.Step))
	}
	if fmt.Sprint(got) != "[sampling/3 sampling/4 decoding/4]" {
		t.Fatalf("delivered %v", got)
	}
	if len(b.take()) != 0 {
		t.Fatal("take twice")
	}
}

func TestProgressBoxMergesPercentOnlyUpdatesAndIsBounded(t *testing.T) {
	b := newProgressBox()
	for pct := 0.0; pct < 10; pct++ {
		b.put(engine.Progress{Stage: sdprogress.StageLoading, Percent: pct})
	}
	ps := b.take()
	if len(ps) != 1 || ps[0].Percent != 9 {
		t.Fatalf("percent-only updates: %+v", ps)
	}
	for i := 1; i <= maxPending+100; i++ {
		b.put(engine.Progress{Stage: sdprogress.StageSampling, Step: i})
	}
	ps = b.take()
	if len(ps) != maxPending || ps[len(ps)-1].Step != maxPending+100 || ps[0].Step != 101 {
		t.Fatalf("bounded queue: %d updates, first %d, last %d", len(ps), ps[0].Step, ps[len(ps)-1].Step)
	}
}

// Previews are latest-wins: a slow reader gets only the newest preview not yet taken, and an
// update without a preview that replaces a pending one keeps it.
func TestProgressBoxKeepsOnlyTheLatestPreview(t *testing.T) {
	b := newProgressBox()
	sampling := func(step int, pvStep int) engine.Progress {
		p := engine.Progress{Stage: sdprogress.StageSampling, Step: step, TotalSteps: 10}
		if pvStep > 0 {
			p.Preview = &engine.Preview{PNG: []byte{byte(pvStep)}, Step: pvStep}
		}
		return p
	}
	b.put(sampling(1, 0))
	b.put(sampling(1, 1))
	b.put(sampling(2, 0))
	b.put(sampling(2, 2))
	b.put(sampling(3, 0))
	b.put(sampling(3, 0)) // a re-estimate of step 3 replaces the pending one
	b.put(sampling(3, 3))
	b.put(engine.Progress{Stage: sdprogress.StageSampling, Step: 3, TotalSteps: 10, Percent: 40}) // no preview: inherits
	got := b.take()
	var steps, previews []int
	for _, p := range got {
		steps = append(steps, p.Step)
		if p.Preview != nil {
			previews = append(previews, p.Preview.Step)
		}
	}
	if !slices.Equal(steps, []int{1, 2, 3}) || !slices.Equal(previews, []int{3}) {
		t.Fatalf("steps %v, previews %v; want every step, only the latest preview", steps, previews)
	}
	if got[2].Percent != 40 {
		t.Errorf("the latest progress did not win: %v", got[2])
	}
}

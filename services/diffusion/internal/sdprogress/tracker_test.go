package sdprogress

import (
	"fmt"
	"math"
	"path/filepath"
	"testing"
	"time"
)

func logEv(msg string) Event {
	return ParseLine([]byte("[INFO ] stable-diffusion.cpp:1    - " + msg))
}

func stepEv(k, n int, secs float64) Event {
	ev := Event{Kind: KindStepBar, Current: k, Total: n, Rate: 1 / secs, Unit: "it/s"}
	if secs > 1 {
		ev.Rate, ev.Unit = secs, "s/it"
	}
	return ev
}

// full512Timeline replays the timing of the captured full512 run (512x512, 30 steps): 1.0 s to
// the first `generating image`, 0.69 s per step, 6.8 s decoding. It calls check with the tracker's
// percent and the true fraction of the job done at each event.
func full512Timeline(t *testing.T, est Estimates, check func(stage Stage, step int, got, truth float64)) *Tracker {
	t.Helper()
	const load, step, decode = 1.0, 0.69, 6.8
	total := load + 30*step + decode
	start := time.Unix(0, 0)
	at := func(s float64) time.Time { return start.Add(time.Duration(s * float64(time.Second))) }
	tr := NewTracker(Plan{Width: 512, Height: 512, Steps: 30}, est, start)
	observe := func(ev Event, s float64) {
		tr.Observe(ev, at(s))
		p := tr.Progress(at(s))
		check(p.Stage, p.Step, p.Percent, 100*s/total)
	}
	observe(logEv("generate_image 512x512"), 0.3)
	observe(logEv("generating image: 1/1 - seed 42"), load)
	for k := 1; k <= 30; k++ {
		observe(stepEv(k, 30, step), load+float64(k)*step)
	}
	observe(logEv("sampling completed, taking 20.70s"), load+30*step+0.01)
	observe(logEv("decoding 1 latents"), load+30*step+0.02)
	for s := 1.0; s < decode; s++ {
		p := tr.Progress(at(load + 30*step + s))
		check(p.Stage, p.Step, p.Percent, 100*(load+30*step+s)/total)
	}
	observe(logEv("decode_first_stage completed, taking 6.80s"), total-0.01)
	observe(logEv("generate_image completed in 28.50s"), total)
	return tr
}

// Whatever the prior estimates, once a few steps are measured the percent tracks the true
// fraction of the job's time.
func TestTrackerRecalibratesFromMeasuredSteps(t *testing.T) {
	def := DefaultEstimates()
	scaled := func(f float64) Estimates {
		return Estimates{
			Load:               time.Duration(float64(def.Load) * f),
			StepBase:           time.Duration(float64(def.StepBase) * f),
			StepPerMegapixel:   time.Duration(float64(def.StepPerMegapixel) * f),
			DecodeBase:         time.Duration(float64(def.DecodeBase) * f),
			DecodePerMegapixel: time.Duration(float64(def.DecodePerMegapixel) * f),
		}
	}
	for _, f := range []float64{0.1, 1, 10} {
		var last float64
		worst := 0.0
		tr := full512Timeline(t, scaled(f), func(stage Stage, step int, got, truth float64) {
			if got < last {
				t.Errorf("x%v: percent went back %v -> %v", f, last, got)
			}
			last = got
			// Judge from the 5th step on, where the speed has been measured.
			if stage == StageSampling && step >= 5 || stage == StageDecoding {
				worst = max(worst, math.Abs(got-truth))
				if math.Abs(got-truth) > 5 {
					t.Errorf("x%v: at %v step %d percent %.1f, true %.1f", f, stage, step, got, truth)
				}
			}
		})
		if last != 100 {
			t.Errorf("x%v: ends at %v", f, last)
		}
		m := tr.Measurement()
		if math.Abs(m.Sampling.Seconds()/float64(m.Steps)-0.69) > 0.001 || math.Abs(m.Decode.Seconds()-6.79) > 0.02 || m.Load != time.Second {
			t.Errorf("measurement %+v", m)
		}
		t.Logf("prior x%v: worst error after step 5: %.1f points", f, worst)
	}
}

func TestEstimatesUpdateConverges(t *testing.T) {
	est := DefaultEstimates()
	m := Measurement{Megapixels: 0.262144, Steps: 29, Load: 3 * time.Second,
		Sampling: 29 * 3 * est.Step(0.262144), Decode: 3 * est.Decode(0.262144)}
	for range 8 {
		est = est.Update(m)
	}
	if r := float64(est.Step(0.262144)) / float64(m.Sampling/29); math.Abs(r-1) > 0.01 {
		t.Errorf("step estimate off by %v after 8 updates", r)
	}
	if r := float64(est.Decode(0.262144)) / float64(m.Decode); math.Abs(r-1) > 0.01 {
		t.Errorf("decode estimate off by %v", r)
	}
	if r := float64(est.Load) / float64(m.Load); math.Abs(r-1) > 0.01 {
		t.Errorf("load estimate off by %v", r)
	}
	// An empty measurement (a job that failed early) changes nothing.
	if got := est.Update(Measurement{}); got != est {
		t.Errorf("empty measurement changed estimates: %+v -> %+v", est, got)
	}
}

func TestTrackerObserveReportsChanges(t *testing.T) {
	start := time.Unix(0, 0)
	tr := NewTracker(Plan{Width: 64, Height: 64, Steps: 4}, DefaultEstimates(), start)
	ms := func(n int) time.Time { return start.Add(time.Duration(n) * time.Millisecond) }
	if tr.Observe(ParseLine([]byte("[INFO ] model_loader.cpp:236  - load x using gguf format")), ms(1)) {
		t.Error("an unrelated log line within a millisecond reported a change")
	}
	if !tr.Observe(logEv("generating image: 1/1 - seed 9"), ms(2)) {
		t.Error("seed and stage change not reported")
	}
	if p := tr.Progress(ms(2)); !p.HasSeed || p.Seed != 9 || p.Stage != StageSampling {
		t.Errorf("progress %+v", p)
	}
	if !tr.Observe(stepEv(1, 4, 0.1), ms(100)) {
		t.Error("step not reported")
	}
	if tr.Observe(stepEv(1, 4, 0.1), ms(101)) {
		t.Error("a repeated step reported a change")
	}
	// A bar whose total differs from the plan (sd-server clamps steps to 1..100) wins.
	tr2 := NewTracker(Plan{Width: 64, Height: 64, Steps: 150}, DefaultEstimates(), start)
	tr2.Observe(stepEv(1, 100, 0.1), ms(10))
	if p := tr2.Progress(ms(10)); p.TotalSteps != 100 || p.Step != 1 {
		t.Errorf("clamped steps: %+v", p)
	}
	p := tr.Finish(ms(500))
	if p.Stage != StageDone || p.Percent != 100 || p.Step != 4 || p.Elapsed != 500*time.Millisecond {
		t.Errorf("finish: %+v", p)
	}
	if tr.Observe(stepEv(2, 4, 0.1), ms(600)) {
		t.Error("events after done reported changes")
	}
}

// Regression: during model loading and prompt encoding (5 s of 8 with the tiny model) progress
// said "step 0/N" of the sampling total. Loading is its own stage (with the weight bar's percent
// when the bar moves: with the tiny model each bar is printed once, complete), then encoding,
// then sampling, whose stage percent follows the steps.
func TestLoadingAndEncodingAreStagesOfTheirOwn(t *testing.T) {
	evs := parseAll(read(t, filepath.Join("testdata", "cli", "gen128.stdout")), 512)
	start := time.Unix(1000, 0)
	tr := NewTracker(Plan{Width: 128, Height: 128, Steps: 20}, DefaultEstimates(), start)
	var stages []Stage
	for i, ev := range evs {
		at := start.Add(time.Duration(i) * 10 * time.Millisecond)
		tr.Observe(ev, at)
		p := tr.Progress(at)
		if len(stages) == 0 || stages[len(stages)-1] != p.Stage {
			stages = append(stages, p.Stage)
		}
		if p.Stage == StageEncoding && p.Step != 0 {
			t.Fatalf("encoding at step %d", p.Step)
		}
		if p.Stage == StageSampling && p.Step > 0 {
			if want := 100 * float64(p.Step) / 20; p.StagePercent != want {
				t.Fatalf("step %d: stage percent %v, want %v", p.Step, p.StagePercent, want)
			}
		}
	}
	if fmt.Sprint(stages) != "[loading encoding sampling decoding done]" {
		t.Fatalf("stages %v", stages)
	}

	// A big model's bar moves: its percent is the loading stage's.
	tr = NewTracker(Plan{Width: 512, Height: 512, Steps: 20}, DefaultEstimates(), start)
	bar := ParseLine([]byte("  |#########################                         | 98/196 - 331.38MB/s"))
	if bar.Kind != KindLoadBar {
		t.Fatalf("not a load bar: %+v", bar)
	}
	if !tr.Observe(bar, start.Add(time.Second)) {
		t.Error("a moving weight bar is a change worth telling")
	}
	if p := tr.Progress(start.Add(time.Second)); p.Stage != StageLoading || p.StagePercent != 50 || !p.LoadingWeights {
		t.Fatalf("half-loaded: %+v", p)
	}
}

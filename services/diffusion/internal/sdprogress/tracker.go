package sdprogress

import "time"

// Stage is the phase a generation is in. Stages only move forward.
type Stage uint8

const (
	StageUnknown Stage = iota
	// StageQueued: the job waits in the engine's own queue (sd-server's) and has not started;
	// the Tracker never reports it (it knows nothing of queues), the engine does.
	StageQueued
	// StageLoading: from the start of the job until the text encoder's weights are loaded (the
	// process start, the model header, the first weight-loading bar).
	StageLoading
	// StageEncoding: the prompt is encoded (`get_learned_condition completed`), up to
	// `generating image: 1/N`.
	StageEncoding
	// StageSampling: from `generating image: 1/N - seed S` to `decoding N latents`.
	StageSampling
	// StageDecoding: from `decoding N latents` to `generate_image completed`.
	StageDecoding
	// StageDone: the generation completed.
	StageDone
)

func (s Stage) String() string {
	switch s {
	case StageQueued:
		return "queued"
	case StageLoading:
		return "loading"
	case StageEncoding:
		return "encoding"
	case StageSampling:
		return "sampling"
	case StageDecoding:
		return "decoding"
	case StageDone:
		return "done"
	default:
		return "unknown"
	}
}

// Plan is what a generation was asked to do.
type Plan struct {
	Width, Height int
	Steps         int
	// Images is the batch count; 0 means 1.
	Images int
}

// Progress is the state of one generation.
type Progress struct {
	Stage Stage
	// Step counts sampling steps over all images of the job (image i's step k is
	// (i-1)*steps+k), so it never goes back; TotalSteps is steps*images.
	Step, TotalSteps int
	// Percent of the whole job, 0..100, never decreasing; 100 only once done.
	Percent float64
	// StagePercent is how far the current stage is, 0..100, when the engine says so: the
	// weight-loading bar while loading, the steps while sampling; 0 when unknown (encoding,
	// decoding, sampling before step 1).
	StagePercent float64
	// LoadingWeights: a weight-loading bar runs (sd.cpp loads each model part lazily, the
	// diffusion model's just before step 1, the VAE's before decoding).
	LoadingWeights bool
	Elapsed        time.Duration
	// Seed is the seed that sd.cpp reported (`generating image: ... - seed N`), when HasSeed.
	Seed    int64
	HasSeed bool
	// Width and Height are the size being generated (sd.cpp aligns odd sizes up to 64).
	Width, Height int
}

// Tracker folds the events of one generation into a Progress. It holds no clock: every call
// says when its event was seen. It is not safe for concurrent use.
type Tracker struct {
	est   Estimates
	plan  Plan
	start time.Time

	p Progress

	sampleStart    time.Time // first `generating image`
	firstStep      time.Time // first step bar of the job
	firstStepIndex int       // Step value at firstStep
	lastStep       time.Time
	lastStepDur    float64 // seconds, from the latest bar's speed
	decodeStart    time.Time
	end            time.Time
	stepsPerImage  int
	image          int
}

// reportEvery is how far the percent must move, with nothing else changing, before Observe
// reports a change.
const reportEvery = 1.0

// NewTracker starts tracking a generation that began at start.
func NewTracker(plan Plan, est Estimates, start time.Time) *Tracker {
	if plan.Images <= 0 {
		plan.Images = 1
	}
	t := &Tracker{est: est, plan: plan, start: start, stepsPerImage: plan.Steps}
	t.p = Progress{
		Stage:      StageLoading,
		TotalSteps: plan.Steps * plan.Images,
		Width:      plan.Width,
		Height:     plan.Height,
	}
	return t
}

// Observe applies one event seen at time at. It reports whether the progress changed in a way
// worth telling a client: a new stage, step or seed, or the percent moved by a point or more.
func (t *Tracker) Observe(ev Event, at time.Time) bool {
	if t.p.Stage == StageDone {
		return false
	}
	before := t.p
	switch ev.Kind {
	case KindStepBar:
		t.observeStep(ev, at)
	case KindLoadBar:
		t.observeLoad(ev)
	case KindLog:
		t.observeMarker(ev, at)
	}
	after := t.Progress(at)
	return after.Stage != before.Stage || after.Step != before.Step ||
		after.LoadingWeights != before.LoadingWeights || after.StagePercent-before.StagePercent >= 10 ||
		after.HasSeed != before.HasSeed || after.Seed != before.Seed ||
		after.Percent-before.Percent >= reportEvery
}

// observeLoad follows a weight-loading bar: the first one to complete ends StageLoading.
func (t *Tracker) observeLoad(ev Event) {
	if ev.Total <= 0 {
		return
	}
	done := ev.Current >= ev.Total
	switch t.p.Stage {
	case StageLoading:
		if done {
			t.p.Stage, t.p.StagePercent, t.p.LoadingWeights = StageEncoding, 0, false
			return
		}
		t.p.StagePercent = 100 * float64(max(ev.Current, 0)) / float64(ev.Total)
		t.p.LoadingWeights = true
	case StageSampling, StageDecoding:
		t.p.LoadingWeights = !done && (t.p.Stage == StageDecoding || t.p.Step == 0)
	}
}

func (t *Tracker) observeStep(ev Event, at time.Time) {
	if ev.Total <= 0 || ev.Current <= 0 {
		return
	}
	if t.stepsPerImage <= 0 || t.image <= 1 && t.stepsPerImage != ev.Total {
		// The plan did not know (or sd-server clamped) the step count: trust the bar.
		t.stepsPerImage = ev.Total
		t.p.TotalSteps = ev.Total * t.plan.Images
	}
	if t.p.Stage < StageSampling {
		t.enterSampling(at)
	}
	img := max(t.image, 1)
	step := (img-1)*t.stepsPerImage + min(ev.Current, t.stepsPerImage)
	if step <= t.p.Step {
		return
	}
	if t.firstStep.IsZero() {
		t.firstStep, t.firstStepIndex = at, step
	}
	t.p.Step = step
	t.p.LoadingWeights = false
	if t.p.TotalSteps > 0 {
		t.p.StagePercent = 100 * float64(step) / float64(t.p.TotalSteps)
	}
	t.lastStep = at
	t.lastStepDur = ev.StepDuration()
}

func (t *Tracker) observeMarker(ev Event, at time.Time) {
	switch ev.Marker {
	case MarkerAligned, MarkerGenerateStart:
		if ev.Width > 0 && ev.Height > 0 {
			t.p.Width, t.p.Height = ev.Width, ev.Height
		}
	case MarkerConditioned:
		if t.p.Stage < StageEncoding {
			t.p.Stage, t.p.StagePercent, t.p.LoadingWeights = StageEncoding, 0, false
		}
	case MarkerGeneratingImage:
		if !t.p.HasSeed {
			t.p.Seed, t.p.HasSeed = ev.Seed, true
		}
		if ev.Index > t.image {
			t.image = ev.Index
		}
		if t.p.Stage < StageSampling {
			t.enterSampling(at)
		}
	case MarkerDecoding:
		if t.p.Stage < StageDecoding {
			if t.p.Stage < StageSampling {
				t.enterSampling(at)
			}
			t.p.Stage, t.p.StagePercent, t.p.LoadingWeights = StageDecoding, 0, false
			t.decodeStart = at
		}
	case MarkerGenerateCompleted:
		t.finish(at)
	}
}

func (t *Tracker) enterSampling(at time.Time) {
	t.p.Stage, t.p.StagePercent, t.p.LoadingWeights = StageSampling, 0, false
	t.sampleStart = at
}

// Finish marks the generation complete at time at (the engine has its image) and returns the
// final progress, at 100 percent.
func (t *Tracker) Finish(at time.Time) Progress {
	t.finish(at)
	return t.Progress(at)
}

func (t *Tracker) finish(at time.Time) {
	if t.p.Stage == StageDone {
		return
	}
	if t.p.TotalSteps > 0 && t.p.Stage >= StageSampling {
		t.p.Step = t.p.TotalSteps
	}
	t.p.Stage, t.p.StagePercent, t.p.LoadingWeights = StageDone, 100, false
	t.end = at
	t.p.Percent = 100
}

// Progress returns the progress as of time at; the percent is re-estimated for at (so calling it
// periodically during a long stage makes the percent advance), and it never decreases.
func (t *Tracker) Progress(at time.Time) Progress {
	if t.p.Stage == StageDone {
		t.p.Elapsed = t.end.Sub(t.start)
		return t.p
	}
	if e := at.Sub(t.start); e > t.p.Elapsed {
		t.p.Elapsed = e
	}
	pct := t.estimatePercent(t.start.Add(t.p.Elapsed))
	if pct > 99.5 {
		pct = 99.5
	}
	if pct > t.p.Percent {
		t.p.Percent = pct
	}
	return t.p
}

// estimatePercent is elapsed / (elapsed + estimated remaining time).
func (t *Tracker) estimatePercent(now time.Time) float64 {
	elapsed := now.Sub(t.start).Seconds()
	if elapsed <= 0 {
		return 0
	}
	mp := float64(t.p.Width*t.p.Height) / 1e6
	stepEst := t.est.Step(mp).Seconds()
	decodeEst := t.est.Decode(mp).Seconds() * float64(t.plan.Images)
	n := t.p.TotalSteps
	if n <= 0 {
		n = 1
	}

	// Before any step is measured, a load slower than estimated says the machine is slower than
	// estimated: scale what remains by as much (never by less than 1; an optimistic estimate
	// would run the percent ahead, and a percent that never decreases would then stall).
	load := t.est.Load.Seconds()
	slow := 1.0
	if load > 0 {
		loaded := elapsed
		if !t.sampleStart.IsZero() {
			loaded = t.sampleStart.Sub(t.start).Seconds()
		}
		slow = min(max(loaded/load, 1), 20)
	}

	var remaining float64
	switch t.p.Stage {
	case StageLoading, StageEncoding:
		remaining = max(load-elapsed, 0.05*load) + slow*(float64(n)*stepEst+decodeEst)
	case StageSampling:
		k := t.p.Step
		if k == 0 {
			in := now.Sub(t.sampleStart).Seconds()
			sampling := slow * float64(n) * stepEst
			remaining = max(sampling-in, 0.05*sampling) + slow*decodeEst
			break
		}
		per := t.measuredStep()
		if per <= 0 {
			per = stepEst * slow
		}
		since := now.Sub(t.lastStep).Seconds()
		remaining = max(float64(n-k)*per-since, 0.5*per) + decodeEst*speedRatio(per, stepEst)
	case StageDecoding:
		dec := decodeEst * slow
		if per := t.measuredStep(); per > 0 {
			dec = decodeEst * speedRatio(per, stepEst)
		}
		in := now.Sub(t.decodeStart).Seconds()
		remaining = max(dec-in, 0.05*dec)
	}
	return 100 * elapsed / (elapsed + remaining)
}

// measuredStep is the mean duration of the steps seen so far, in seconds: from the time between
// step bars once there are two, else from the first bar's speed.
func (t *Tracker) measuredStep() float64 {
	if k := t.p.Step - t.firstStepIndex; k > 0 {
		return t.lastStep.Sub(t.firstStep).Seconds() / float64(k)
	}
	return t.lastStepDur
}

// speedRatio is how much slower (>1) or faster the machine is than estimated, bounded so that a
// single odd step cannot swing the estimate wildly.
func speedRatio(measured, estimated float64) float64 {
	if measured <= 0 || estimated <= 0 {
		return 1
	}
	return min(max(measured/estimated, 0.05), 20)
}

// Measurement reports the stage durations seen, for [Estimates.Update].
func (t *Tracker) Measurement() Measurement {
	m := Measurement{
		Megapixels: float64(t.p.Width*t.p.Height) / 1e6,
		Steps:      t.p.Step,
	}
	if !t.sampleStart.IsZero() {
		m.Load = t.sampleStart.Sub(t.start)
	}
	if !t.firstStep.IsZero() && t.p.Step > t.firstStepIndex {
		// Steps after the first exclude the lazy weight load that precedes step 1.
		m.Sampling = t.lastStep.Sub(t.firstStep)
		m.Steps = t.p.Step - t.firstStepIndex
	}
	if !t.decodeStart.IsZero() && !t.end.IsZero() {
		m.Decode = t.end.Sub(t.decodeStart) / time.Duration(t.plan.Images)
	}
	return m
}

package engine

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/genailab/genailab/pkg/imagereq"
	"github.com/genailab/genailab/services/diffusion/internal/sdprogress"
)

// ProgressFunc receives progress updates of one generation, in order. It is called from the
// goroutine that reads the engine's output, so it must not block (hand the value to another
// goroutine; see the server package's mailbox).
type ProgressFunc func(Progress)

// generation is the one generation in progress.
type generation struct {
	params imagereq.Params
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	start  time.Time

	mu      sync.Mutex
	tracker *sdprogress.Tracker
	last    Progress
	rate    float64 // steps per second of the latest step
	pid     int
	queued  bool
	sink    ProgressFunc
}

func newGeneration(ctx context.Context, p imagereq.Params, est sdprogress.Estimates, sink ProgressFunc, now time.Time) *generation {
	gctx, cancel := context.WithCancel(ctx)
	g := &generation{
		params: p,
		ctx:    gctx,
		cancel: cancel,
		done:   make(chan struct{}),
		start:  now,
		sink:   sink,
		tracker: sdprogress.NewTracker(sdprogress.Plan{Width: p.Width, Height: p.Height, Steps: p.Steps, Images: p.N},
			est, now),
	}
	g.last = Progress{Stage: sdprogress.StageLoading, TotalSteps: p.Steps * max(p.N, 1), ImageCount: max(p.N, 1), Message: "starting"}
	return g
}

// setQueued marks the job as waiting in sd-server's queue (true) or picked up (false).
func (g *generation) setQueued(q bool, at time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.queued == q {
		return
	}
	g.queued = q
	g.publish(at, true)
}

func (g *generation) setPID(pid int) {
	g.mu.Lock()
	g.pid = pid
	g.mu.Unlock()
}

func (g *generation) getPID() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.pid
}

// observe applies one event of the engine's output.
func (g *generation) observe(ev sdprogress.Event, at time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if ev.Kind == sdprogress.KindStepBar {
		if d := ev.StepDuration(); d > 0 {
			g.rate = 1 / d
		}
	}
	changed := g.tracker.Observe(ev, at)
	if g.queued && ev.Kind != sdprogress.KindText {
		g.queued = false // output means sd-server is working on it
		changed = true
	}
	g.publish(at, changed)
}

// tick re-estimates the percent during long stages without output.
func (g *generation) tick(at time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.publish(at, false)
}

// finish reports the final progress (100 percent).
func (g *generation) finish(at time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.tracker.Finish(at)
	g.publish(at, true)
}

// publish converts the tracker's state and hands it to the sink when it changed (or the
// percent moved by a point). Called with g.mu held.
func (g *generation) publish(at time.Time, changed bool) {
	p := g.tracker.Progress(at)
	next := Progress{
		Stage:          p.Stage,
		Step:           p.Step,
		TotalSteps:     p.TotalSteps,
		Percent:        p.Percent,
		StagePercent:   p.StagePercent,
		LoadingWeights: p.LoadingWeights,
		Elapsed:        p.Elapsed,
		StepsPerSecond: g.rate,
	}
	if g.queued {
		next.Stage = sdprogress.StageQueued
	}
	next.ImageCount = max(g.params.N, 1)
	if p.TotalSteps > 0 && next.ImageCount > 1 && p.Step > 0 {
		perImage := max(p.TotalSteps/next.ImageCount, 1)
		next.ImageIndex = min((p.Step-1)/perImage, next.ImageCount-1)
	}
	next.Message = message(next)
	if !changed && next.Percent-g.last.Percent < 1 {
		return
	}
	g.last = next
	if g.sink != nil {
		g.sink(next)
	}
}

// preview hands a new preview image to the sink, on the current progress. Previews come from
// their own goroutine, after the step bar that announced them.
func (g *generation) preview(pv Preview) {
	g.mu.Lock()
	defer g.mu.Unlock()
	next := g.last
	next.Preview = &pv
	if g.sink != nil {
		g.sink(next)
	}
}

func (g *generation) snapshot() Progress {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.last
}

func (g *generation) measurement() sdprogress.Measurement {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.tracker.Measurement()
}

func message(p Progress) string {
	switch p.Stage {
	case sdprogress.StageQueued:
		return "queued"
	case sdprogress.StageLoading:
		if p.LoadingWeights {
			return fmt.Sprintf("loading model weights (%.0f%%)", p.StagePercent)
		}
		return "loading model"
	case sdprogress.StageEncoding:
		return "encoding the prompt"
	case sdprogress.StageSampling:
		if p.Step == 0 {
			if p.LoadingWeights {
				return "loading the diffusion model's weights"
			}
			return "sampling"
		}
		return fmt.Sprintf("sampling step %d/%d", p.Step, p.TotalSteps)
	case sdprogress.StageDecoding:
		if p.LoadingWeights {
			return "loading the VAE's weights"
		}
		return "decoding"
	case sdprogress.StageDone:
		return "done"
	}
	return ""
}

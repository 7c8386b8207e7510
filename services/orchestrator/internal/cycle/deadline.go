package cycle

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc/codes"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
)

// The total generation deadline. An engine that keeps printing never trips the diffusion
// service's stall timeout, so the cycle bounds the whole generation itself: past the
// deadline the diffusion stream is cancelled (the diffusion service kills the engine), the
// image fails with DeadlineExceeded, and the LLM is reloaded as on every other failure.
//
// The deadline is -generation-timeout when set. Otherwise it is derived from the sampling
// steps and the step time measured — from this image's own progress once two steps have
// been seen, before that from the previous image of the host (scaled by the pixels) —
// times a generous factor, at least GenerationTimeoutMin; it never exceeds the hard cap
// GenerationTimeoutMax, which alone bounds an image before any step time is known.

// Defaults of the generation deadline.
const (
	DefaultGenerationTimeoutMax    = time.Hour
	DefaultGenerationTimeoutMin    = 3 * time.Minute
	DefaultGenerationTimeoutFactor = 4.0
	// defaultSteps is the diffusion service's step count when a request sets none.
	defaultSteps = 20
)

// ErrGenerationDeadline is matched (errors.Is) by a *DeadlineError.
var ErrGenerationDeadline = errors.New("the generation ran past its deadline")

// DeadlineError is the failure of a generation cancelled at its deadline. Its gRPC code is
// DeadlineExceeded.
type DeadlineError struct {
	// Limit is the deadline, from the start of the generation.
	Limit time.Duration
	// Basis says how Limit was set.
	Basis string
	// Step and TotalSteps are the last sampling step seen.
	Step, TotalSteps int32
}

func (e *DeadlineError) Error() string {
	return fmt.Sprintf("%v: %s (%s), last at sampling step %d of %d; the generation was cancelled and its engine stopped",
		ErrGenerationDeadline, roundDuration(e.Limit), e.Basis, e.Step, e.TotalSteps)
}

// GRPCCode makes the edge answer DeadlineExceeded (pkg/grpcerr).
func (e *DeadlineError) GRPCCode() codes.Code { return codes.DeadlineExceeded }

// Is matches ErrGenerationDeadline.
func (e *DeadlineError) Is(target error) bool { return target == ErrGenerationDeadline }

func roundDuration(d time.Duration) time.Duration {
	switch {
	case d >= time.Minute:
		return d.Round(time.Second)
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}

// stepTiming is what the last completed image of a host measured.
type stepTiming struct {
	// perPixel is the sampling step time per output pixel.
	perPixel float64 // nanoseconds
	// before is the time from the start to the first sampling step; after, from the last
	// step to the result (decoding, encoding).
	before, after time.Duration
}

// timings remembers the host's last measured stepTiming.
type timings struct {
	mu   sync.Mutex
	last *stepTiming
}

func (t *timings) get() *stepTiming {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last
}

func (t *timings) set(s stepTiming) {
	t.mu.Lock()
	t.last = &s
	t.mu.Unlock()
}

// genDeadline follows one generation's progress and says its deadline.
type genDeadline struct {
	o      Options
	start  time.Time
	pixels float64
	prev   *stepTiming

	mu                 sync.Mutex
	total              int32
	firstAt, advAt     time.Time
	firstStep, advStep int32
	lastStep           int32
}

func newGenDeadline(o Options, params *diffusionv1.ImageParams, w, h int, prev *stepTiming, start time.Time) *genDeadline {
	total := params.GetSteps()
	if total <= 0 {
		total = defaultSteps
	}
	return &genDeadline{o: o, start: start, pixels: float64(w) * float64(h), prev: prev, total: total}
}

// progress takes one progress message; it reports whether the deadline may have changed.
func (g *genDeadline) progress(p *diffusionv1.Progress, now time.Time) bool {
	if p.GetStage() != diffusionv1.Stage_STAGE_SAMPLING || p.GetStep() <= 0 {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if p.GetTotalSteps() > 0 {
		g.total = p.GetTotalSteps()
	}
	step := p.GetStep()
	g.lastStep = step
	switch {
	case g.firstAt.IsZero():
		g.firstAt, g.firstStep = now, step
		return true
	case step > g.advStep && step > g.firstStep:
		// Only a step that advances counts: an engine repeating the same step (or
		// starting its count over) does not stretch the measured step time.
		g.advAt, g.advStep = now, step
		return true
	}
	return false
}

// measured returns this generation's step time, once two steps were seen.
func (g *genDeadline) measuredLocked() (step, before time.Duration, ok bool) {
	if g.advAt.IsZero() {
		return 0, 0, false
	}
	step = g.advAt.Sub(g.firstAt) / time.Duration(g.advStep-g.firstStep)
	before = max(g.firstAt.Sub(g.start)-step, 0)
	return step, before, true
}

// limit returns the deadline (from the start) and how it was set.
func (g *genDeadline) limit() (time.Duration, string) {
	if g.o.GenerationTimeout > 0 {
		return g.o.GenerationTimeout, "set by -generation-timeout"
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	step, before, ok := g.measuredLocked()
	var after time.Duration
	basis := "measured on this image"
	if g.prev != nil {
		after = g.prev.after
	}
	if !ok {
		if g.prev == nil || g.prev.perPixel <= 0 {
			return g.o.GenerationTimeoutMax, "the hard cap: no step time measured yet"
		}
		step = time.Duration(g.prev.perPixel * g.pixels)
		before = g.prev.before
		basis = "measured on the previous image"
	}
	budget := time.Duration(g.o.GenerationTimeoutFactor * float64(before+time.Duration(g.total)*step+after))
	limit := min(max(budget, g.o.GenerationTimeoutMin), g.o.GenerationTimeoutMax)
	return limit, fmt.Sprintf("%g × (%s before sampling + %d steps × %s per step %s + %s after), within [%s, %s]",
		g.o.GenerationTimeoutFactor, roundDuration(before), g.total, roundDuration(step), basis, roundDuration(after),
		roundDuration(g.o.GenerationTimeoutMin), roundDuration(g.o.GenerationTimeoutMax))
}

// err is the failure at the deadline.
func (g *genDeadline) err() *DeadlineError {
	limit, basis := g.limit()
	g.mu.Lock()
	defer g.mu.Unlock()
	return &DeadlineError{Limit: limit, Basis: basis, Step: g.lastStep, TotalSteps: g.total}
}

// timing is what this generation measured, for the next one (false when it saw fewer than
// two steps).
func (g *genDeadline) timing(done time.Time) (stepTiming, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	step, before, ok := g.measuredLocked()
	if !ok || g.pixels <= 0 {
		return stepTiming{}, false
	}
	return stepTiming{perPixel: float64(step) / g.pixels, before: before, after: max(done.Sub(g.advAt), 0)}, true
}

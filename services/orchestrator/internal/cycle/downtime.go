package cycle

import (
	"sync"
	"time"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
)

// The LLM's expected down time in an offload, learnt from measured cycles: the down time is
// the stop (drain, slot save), the wait for the memory to be freed, the image, and the
// reload (model load, slot restore). The part beyond the image's own engine time is learnt as
// a moving average of the measured cycles (estimate.LearnAlpha's weighting); the image's time
// is estimated from the host's last measured step time (deadline.go). WouldNeedOffload and
// the waiting status of chats show the sum.

// downAlpha is the weight of the newest measurement.
const downAlpha = 0.5

// downTimes is the learnt overhead of an offload beyond the image.
type downTimes struct {
	mu       sync.Mutex
	overhead time.Duration
	samples  int
}

// learn folds in one cycle: the LLM was down for down, of which image was the generation.
func (d *downTimes) learn(down, image time.Duration) {
	over := max(down-image, 0)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.samples == 0 {
		d.overhead = over
	} else {
		d.overhead += time.Duration(downAlpha * float64(over-d.overhead))
	}
	d.samples++
}

func (d *downTimes) get() (time.Duration, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.overhead, d.samples > 0
}

// ExpectedDown is how long the LLM is expected to be down for an image with params: the
// learnt overhead plus the image's estimated engine time. ok is false until a cycle and an
// image's step time were measured on this host.
func (c *Cycle) ExpectedDown(params *diffusionv1.ImageParams) (time.Duration, bool) {
	over, ok := c.down.get()
	t := c.timing.get()
	if !ok || t == nil || t.perPixel <= 0 {
		return 0, false
	}
	w, h := float64(params.GetWidth()), float64(params.GetHeight())
	if w <= 0 {
		w = 512
	}
	if h <= 0 {
		h = 512
	}
	steps := params.GetSteps()
	if steps <= 0 {
		steps = defaultSteps
	}
	image := t.before + time.Duration(float64(steps)*t.perPixel*w*h) + t.after
	return over + image, true
}

package sdgen

import (
	"time"

	"github.com/genailab/genailab/services/diffusion/internal/standin/sdmodel"
)

// point is a measured duration for an image of px pixels (64x64 = 4096).
type point struct {
	px  float64
	sec float64
}

// Per-step sampling time and per-latent VAE decode time of the captured CPU runs.
var (
	stepCurve   = []point{{4096, 0.022}, {16384, 0.040}, {65536, 0.133}, {262144, 0.68}}
	decodeCurve = []point{{4096, 0.11}, {16384, 0.38}, {65536, 1.59}, {262144, 6.6}}
)

// interpolate reads a curve linearly, extending the end segments.
func interpolate(c []point, px float64) time.Duration {
	i := 1
	for i < len(c)-1 && px > c[i].px {
		i++
	}
	a, b := c[i-1], c[i]
	sec := a.sec + (px-a.px)*(b.sec-a.sec)/(b.px-a.px)
	return time.Duration(max(sec, 0.001) * float64(time.Second))
}

func (t Timing) stage(realistic time.Duration) time.Duration {
	if t.Stage > 0 || !t.Realistic {
		return t.Stage
	}
	return realistic
}

// Header is the time to read the model header.
func (t Timing) Header() time.Duration { return t.stage(300 * time.Millisecond) }

// Load is the time to load one module's weights.
func (t Timing) Load(sdmodel.Module) time.Duration { return t.stage(200 * time.Millisecond) }

// Condition is the time of the text encoder.
func (t Timing) Condition() time.Duration { return t.stage(350 * time.Millisecond) }

// Step is the time of one sampling step of a w x h image; the first step of a process is slower
// (graph allocation and warm-up) in the realistic model.
func (t Timing) StepTime(w, h int, first bool) time.Duration {
	if t.Step > 0 || !t.Realistic {
		return t.Step
	}
	d := interpolate(stepCurve, float64(w*h))
	if first {
		d += 200 * time.Millisecond
	}
	return d
}

// Decode is the VAE decode time of one w x h latent.
func (t Timing) Decode(w, h int) time.Duration {
	if t.Stage > 0 || !t.Realistic {
		return t.Stage
	}
	return interpolate(decodeCurve, float64(w*h))
}

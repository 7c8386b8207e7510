package sdprogress

import (
	"math"
	"time"
)

// Estimates are the expected durations of the stages of one generation, used to turn steps and
// elapsed time into a percent of the whole job. Per-step and decode times grow with the image's
// pixel count: base + perMegapixel*megapixels.
type Estimates struct {
	// Load is the time from the start of a job to its first sampling step's start (process
	// start, model header, text encoder, conditioning).
	Load               time.Duration
	StepBase           time.Duration
	StepPerMegapixel   time.Duration
	DecodeBase         time.Duration
	DecodePerMegapixel time.Duration
}

// DefaultEstimates are fitted to the reference captures (CPU, 2 cores): 64x64 steps took about
// 0.1 s, 128x128 steps 0.05 s and 512x512 steps 0.69 s; a 512x512 decode took 6.8 s. Real models
// on a GPU are faster or slower by a factor that the first measured job corrects ([Estimates.Update])
// and, within a job, the first measured steps correct.
func DefaultEstimates() Estimates {
	return Estimates{
		Load:               time.Second,
		StepBase:           10 * time.Millisecond,
		StepPerMegapixel:   2600 * time.Millisecond,
		DecodeBase:         100 * time.Millisecond,
		DecodePerMegapixel: 26 * time.Second,
	}
}

// Step is the expected duration of one sampling step of an image of mp megapixels.
func (e Estimates) Step(mp float64) time.Duration {
	return e.StepBase + time.Duration(float64(e.StepPerMegapixel)*mp)
}

// Decode is the expected duration of decoding one image of mp megapixels.
func (e Estimates) Decode(mp float64) time.Duration {
	return e.DecodeBase + time.Duration(float64(e.DecodePerMegapixel)*mp)
}

// Measurement is what a Tracker measured of one generation.
type Measurement struct {
	Megapixels float64
	Steps      int
	// Load, Sampling and Decode are zero when the stage was not seen.
	Load, Sampling, Decode time.Duration
}

// Update blends a measured generation into the estimates (halfway, in log space, so a few jobs
// converge on a machine's speed and one outlier does not dominate), and returns the result.
func (e Estimates) Update(m Measurement) Estimates {
	const alpha = 0.5
	scale := func(measured, expected time.Duration) float64 {
		if measured <= 0 || expected <= 0 {
			return 1
		}
		return math.Pow(float64(measured)/float64(expected), alpha)
	}
	if m.Load > 0 {
		e.Load = time.Duration(float64(e.Load) * scale(m.Load, e.Load))
	}
	if m.Sampling > 0 && m.Steps > 0 {
		f := scale(m.Sampling/time.Duration(m.Steps), e.Step(m.Megapixels))
		e.StepBase = time.Duration(float64(e.StepBase) * f)
		e.StepPerMegapixel = time.Duration(float64(e.StepPerMegapixel) * f)
	}
	if m.Decode > 0 {
		f := scale(m.Decode, e.Decode(m.Megapixels))
		e.DecodeBase = time.Duration(float64(e.DecodeBase) * f)
		e.DecodePerMegapixel = time.Duration(float64(e.DecodePerMegapixel) * f)
	}
	return e
}

package estimate

// Learning from measured peaks: after a run, the monitor's highest reading of the
// diffusion engine's memory is compared with the estimate made without correction, and
// the difference is folded into a moving average, so that the next estimate of the same
// model starts from what was really used.

// LearnAlpha is the weight of the newest measurement in the moving average.
const LearnAlpha = 0.5

// Learn returns the new average correction after a run whose uncorrected estimate was
// estimated and whose measured peak was peak; prev and samples are the stored average
// and the number of runs it covers.
func Learn(prev float64, samples int, estimated, peak uint64) float64 {
	delta := float64(peak) - float64(estimated)
	if samples == 0 {
		return delta
	}
	return prev + LearnAlpha*(delta-prev)
}

package supervisor

import "time"

// restartBudget remembers the automatic restarts and decides whether
// another one is allowed, and after what delay.
//
// The delay grows with the streak: the crashes since the last Start or the
// last stable run (see RestartPolicy.ResetAfter). The give-up budget, only
// kept with a positive MaxRestarts, counts the restarts within the policy
// window. The two are separate on purpose: a window alone lets the delay
// fall back to its start as soon as the delays outgrow the window, so a
// crash loop would never back off for long.
type restartBudget struct {
	times  []time.Time
	streak int
}

// next returns the delay before the next restart and its attempt number
// within the streak, or ok == false when MaxRestarts (if positive) are
// already spent within the window; attempt is then the number spent.
func (b *restartBudget) next(p RestartPolicy, now time.Time) (delay time.Duration, attempt int, ok bool) {
	if p.MaxRestarts > 0 {
		kept := b.times[:0]
		for _, t := range b.times {
			if now.Sub(t) < p.Window {
				kept = append(kept, t)
			}
		}
		b.times = kept
		if k := len(b.times); k >= p.MaxRestarts {
			return 0, k, false
		}
	}
	delay = p.Backoff.Initial
	for i := 0; i < b.streak && delay < p.Backoff.Max; i++ {
		delay = p.Backoff.next(delay)
	}
	return min(delay, max(p.Backoff.Max, p.Backoff.Initial)), b.streak + 1, true
}

// record notes a restart at t: one more in the streak (and in the window).
func (b *restartBudget) record(p RestartPolicy, t time.Time) {
	b.streak++
	if p.MaxRestarts > 0 {
		b.times = append(b.times, t)
	}
}

// stable ends the streak: the process ran long enough.
func (b *restartBudget) stable() { b.streak = 0 }

// reset forgets all restarts (a new Start by the caller).
func (b *restartBudget) reset() {
	b.times = b.times[:0]
	b.streak = 0
}

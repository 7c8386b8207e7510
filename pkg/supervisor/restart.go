package supervisor

import "time"

// restartBudget remembers when automatic restarts happened and decides
// whether another one is allowed, and after what delay.
type restartBudget struct {
	times []time.Time
}

// next prunes restarts older than the policy window and returns the delay
// before the next restart and its attempt number within the window, or
// ok == false when MaxRestarts are already spent.
func (b *restartBudget) next(p RestartPolicy, now time.Time) (delay time.Duration, attempt int, ok bool) {
	kept := b.times[:0]
	for _, t := range b.times {
		if now.Sub(t) < p.Window {
			kept = append(kept, t)
		}
	}
	b.times = kept
	k := len(b.times)
	if k >= p.MaxRestarts {
		return 0, k, false
	}
	delay = p.Backoff.Initial
	for range k {
		delay = p.Backoff.next(delay)
	}
	return delay, k + 1, true
}

// record notes a restart at t.
func (b *restartBudget) record(t time.Time) { b.times = append(b.times, t) }

// reset forgets all restarts (a new Start by the caller).
func (b *restartBudget) reset() { b.times = b.times[:0] }

package supervisor

import (
	"syscall"
	"time"
)

// stopStep is one step of stopping a process: a signal to its group, then
// how long to wait for the exit before the next step (0 after the last).
type stopStep struct {
	sig   syscall.Signal
	grace time.Duration
}

// stopSequence is how a process is stopped, by the Supervisor and by
// RunOnce alike: SIGTERM, TermRepeat and SIGTERM again (when TermRepeat is
// positive), TermGrace, a second SIGTERM (unless SecondTermGrace is
// negative), SecondTermGrace, SIGKILL. spec has its defaults.
func (s *Spec) stopSequence() []stopStep {
	var steps []stopStep
	if s.TermRepeat > 0 {
		steps = append(steps, stopStep{syscall.SIGTERM, s.TermRepeat})
	}
	steps = append(steps, stopStep{syscall.SIGTERM, s.TermGrace})
	if s.SecondTermGrace > 0 {
		steps = append(steps, stopStep{syscall.SIGTERM, s.SecondTermGrace})
	}
	return append(steps, stopStep{syscall.SIGKILL, 0})
}

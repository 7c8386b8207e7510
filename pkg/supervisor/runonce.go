package supervisor

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/genailab/genailab/pkg/logring"
)

// RunResult is how a process run by RunOnce ended.
type RunResult struct {
	// Pid of the process, and when it was launched.
	Pid       int
	StartedAt time.Time
	// Exit is how the process ended (a non-zero code is not an error of
	// RunOnce: the caller decides what it means).
	Exit ExitStatus
	// Stopped: the context ended first and RunOnce stopped the process.
	Stopped bool
	// Tail is the last Spec.TailLines lines of output (stdout and stderr,
	// in the order they were handled).
	Tail []Line
}

// RunOnce runs spec's process once, to its end: the one-shot counterpart of
// a Supervisor (for a program run per job, such as sd-cli), with the same
// guarantees. The process is started without a shell, with the environment
// Spec.InheritEnv/KeepEnv/DropEnv/Env describe, in its own process group,
// with SIGKILL as its parent-death signal from a thread kept for its whole
// life; whatever is left in its group when it exits is killed before it is
// reaped. Its output goes to Spec.OnChunk, Spec.OnLine and Spec.LogFile as
// for a supervised process, and its last lines to RunResult.Tail; all of
// them are done when RunOnce returns.
//
// When ctx ends first, the process group is stopped with the Supervisor's
// sequence (SIGTERM, TermGrace, SIGTERM, SecondTermGrace, SIGKILL; see
// Spec), the result says Stopped, and the error wraps context.Cause(ctx).
// Other errors are an unusable Spec (ErrInvalidSpec: readiness and health
// probes, restarts and ports belong to a Supervisor) and a failed launch.
func RunOnce(ctx context.Context, spec Spec) (RunResult, error) {
	if err := spec.checkOneShot(); err != nil {
		return RunResult{}, fmt.Errorf("run %s: %w", spec.Path, err)
	}
	sp, err := spec.withDefaults()
	if err != nil {
		return RunResult{}, fmt.Errorf("run %s: %w", spec.Path, err)
	}
	name := filepath.Base(sp.Path)
	if err := ctx.Err(); err != nil {
		return RunResult{}, fmt.Errorf("run %s: %w", name, context.Cause(ctx))
	}
	tail := logring.New[Line](sp.TailLines)
	exited := make(chan ExitStatus, 1)
	p := &proc{spec: &sp}
	err = p.launch(func(l Line) {
		tail.Append(l)
		if sp.OnLine != nil {
			sp.OnLine(l)
		}
	}, func(e ExitStatus) { exited <- e })
	if err != nil {
		return RunResult{}, fmt.Errorf("start %s: %w", name, err)
	}

	res := RunResult{Pid: p.pid, StartedAt: p.startedAt}
	select {
	case res.Exit = <-exited:
	case <-ctx.Done():
		select {
		case res.Exit = <-exited: // it ended on its own meanwhile
		default:
			res.Stopped = true
			res.Exit = p.stop(exited)
		}
	}
	res.Tail = tail.Tail(sp.TailLines)
	tail.Close()
	if res.Stopped {
		return res, fmt.Errorf("%s (pid %d) stopped (%s): %w", name, res.Pid, res.Exit, context.Cause(ctx))
	}
	return res, nil
}

// checkOneShot refuses what only a Supervisor does.
func (s *Spec) checkOneShot() error {
	switch {
	case s.Ready != nil || s.ReadyOnLine != nil || s.Health != nil || s.HealthInterval != 0:
		return fmt.Errorf("%w: a one-shot run has no readiness or health probes", ErrInvalidSpec)
	case s.Restart.Enabled:
		return fmt.Errorf("%w: a one-shot run is not restarted", ErrInvalidSpec)
	case s.Port != 0 || s.Host != "":
		return fmt.Errorf("%w: a one-shot run has no port to check", ErrInvalidSpec)
	}
	return nil
}

// stop runs the stop sequence on p's group until the exit arrives on exited
// and returns it. Signals go to the group only while its leader is not
// reaped (proc.signal), so a reused pid is never signalled.
func (p *proc) stop(exited <-chan ExitStatus) ExitStatus {
	for _, st := range p.spec.stopSequence() {
		_ = p.signal(st.sig) // only EPERM could fail, and not on our own child's group
		if st.grace <= 0 {
			break
		}
		t := time.NewTimer(st.grace)
		select {
		case e := <-exited:
			t.Stop()
			return e
		case <-t.C:
		}
	}
	return <-exited
}

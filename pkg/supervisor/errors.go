package supervisor

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/genailab/genailab/pkg/ports"
)

// Domain errors. Services map them to their own codes at their edge (for
// example ErrAlreadyRunning to gRPC FailedPrecondition).
var (
	// ErrAlreadyRunning: Start while a process is starting, running or
	// stopping.
	ErrAlreadyRunning = errors.New("already running")
	// ErrNotRunning: the operation needs a process (or a previous Spec) and
	// there is none.
	ErrNotRunning = errors.New("not running")
	// ErrStartTimeout: the process did not become ready in time; it was
	// killed.
	ErrStartTimeout = errors.New("did not become ready in time")
	// ErrExitedDuringStart: the process exited before it became ready.
	ErrExitedDuringStart = errors.New("exited during start")
	// ErrStartAborted: the start was abandoned (the caller's context ended,
	// Stop or Restart was called, or the supervisor closed); the process was
	// killed.
	ErrStartAborted = errors.New("start aborted")
	// ErrPortInUse: the Spec's port is held by another socket. It is the same
	// value as ports.ErrPortInUse.
	ErrPortInUse = ports.ErrPortInUse
	// ErrInvalidSpec: the Spec is unusable (no path, bad port, ...).
	ErrInvalidSpec = errors.New("invalid spec")
	// ErrClosed: the supervisor has been closed.
	ErrClosed = errors.New("supervisor closed")
)

// StartError is the error of a start that failed after the process was
// launched. errors.Is matches its Reason (ErrExitedDuringStart,
// ErrStartTimeout or ErrStartAborted) and its Cause.
type StartError struct {
	Name   string
	Reason error
	// Exit is how the process ended, when it ended on its own; nil when it
	// was killed by the supervisor (timeout, abort).
	Exit *ExitStatus
	// Elapsed is the time from launch to the failure.
	Elapsed time.Duration
	// Cause is the last readiness probe error (timeouts) or the context
	// error (aborts), if any.
	Cause error
	// Tail is the last lines the process printed (stdout and stderr).
	Tail []string
}

func (e *StartError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %v", e.Name, e.Reason)
	if e.Exit != nil {
		fmt.Fprintf(&b, " (%s)", e.Exit)
	}
	if errors.Is(e.Reason, ErrStartTimeout) {
		fmt.Fprintf(&b, " after %s", e.Elapsed.Round(time.Millisecond))
	}
	if e.Cause != nil {
		fmt.Fprintf(&b, ": %v", e.Cause)
	}
	if len(e.Tail) > 0 {
		b.WriteString("; last output:\n")
		b.WriteString(strings.Join(e.Tail, "\n"))
	}
	return b.String()
}

// Unwrap returns the reason and the cause.
func (e *StartError) Unwrap() []error {
	if e.Cause == nil {
		return []error{e.Reason}
	}
	return []error{e.Reason, e.Cause}
}

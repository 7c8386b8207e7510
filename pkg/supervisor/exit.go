package supervisor

import (
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ExitStatus describes how a process ended.
type ExitStatus struct {
	// Code is the exit code, or -1 when the process was killed by a signal.
	Code int
	// Signal is the signal that killed the process, or 0.
	Signal syscall.Signal
	// At is when the exit was observed.
	At time.Time
}

// Signaled reports whether the process was killed by a signal.
func (e ExitStatus) Signaled() bool { return e.Signal != 0 }

// SignalName returns the signal's name such as "SIGKILL", or "" when the
// process exited normally.
func (e ExitStatus) SignalName() string {
	if e.Signal == 0 {
		return ""
	}
	if n := unix.SignalName(e.Signal); n != "" {
		return n
	}
	return fmt.Sprintf("signal %d", int(e.Signal))
}

func (e ExitStatus) String() string {
	if e.Signaled() {
		return "killed by " + e.SignalName()
	}
	return fmt.Sprintf("exit code %d", e.Code)
}

func exitStatusOf(ps *os.ProcessState, at time.Time) ExitStatus {
	es := ExitStatus{Code: ps.ExitCode(), At: at}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		es.Code, es.Signal = -1, ws.Signal()
	}
	return es
}

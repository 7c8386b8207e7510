package sdcli

import (
	"errors"
	"syscall"
	"time"
)

// killGroup sends SIGTERM to the process group pgid, and SIGKILL after grace unless exited
// is closed first.
func killGroup(pgid int, grace time.Duration, exited <-chan struct{}) {
	if err := syscall.Kill(-pgid, syscall.SIGTERM); errors.Is(err, syscall.ESRCH) {
		return
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-exited:
	case <-t.C:
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
}

// sweepGroup kills whatever is left in the process group after its leader was reaped.
func sweepGroup(pgid int) {
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

package telemetry

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/genailab/genailab/pkg/supervisor"
)

// PIDFileRoots returns a RootProvider reading the pid files in dir — the
// "<name>.pid" files genailab's supervisors write (pkg/supervisor's
// PidRecord) — on every call: the processes the host's services run, whose
// descendants are their engines. A file counts only while its process is
// the one recorded (PidRecord.Current: same boot, same start time as
// /proc/PID/stat), so a stale file whose pid was reused by another process
// makes that process no root; a file without a start time (older
// supervisors) is taken by its pid. Files that cannot be read or parsed are
// skipped and reported in the error, as is an unreadable dir; the PIDs read
// are returned regardless.
func PIDFileRoots(dir string) RootProvider {
	return func() (map[int32]bool, error) {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return map[int32]bool{}, fmt.Errorf("managed pid dir: %w", err)
		}
		roots := make(map[int32]bool, len(entries))
		var errs []error
		for _, ent := range entries {
			if !strings.HasSuffix(ent.Name(), ".pid") || !ent.Type().IsRegular() {
				continue
			}
			rec, err := supervisor.ReadPidFile(filepath.Join(dir, ent.Name()))
			if errors.Is(err, os.ErrNotExist) {
				continue // removed meanwhile: its process exited
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("managed pid file %s: %w", ent.Name(), err))
				continue
			}
			if ok, _ := rec.Current(); !ok {
				continue // stale: its process is gone, or its pid is another process's now
			}
			roots[int32(rec.Pid)] = true
		}
		return roots, errors.Join(errs...)
	}
}

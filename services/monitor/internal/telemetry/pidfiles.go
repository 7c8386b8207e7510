package telemetry

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// PIDFileRoots returns a RootProvider reading the pid files in dir — the
// "<name>.pid" files genailab's supervisors write (JSON with a "pid"
// field; see pkg/supervisor) — on every call: the processes the host's
// services run, whose descendants are their engines. Files that cannot be
// read or parsed are skipped and reported in the error, as is an unreadable
// dir; the PIDs read are returned regardless.
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
			b, err := os.ReadFile(filepath.Join(dir, ent.Name()))
			if errors.Is(err, os.ErrNotExist) {
				continue // removed meanwhile: its process exited
			}
			var rec struct {
				Pid int32 `json:"pid"`
			}
			if err == nil {
				err = json.Unmarshal(b, &rec)
			}
			if err == nil && rec.Pid <= 1 {
				err = fmt.Errorf("pid %d", rec.Pid)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("managed pid file %s: %w", ent.Name(), err))
				continue
			}
			roots[rec.Pid] = true
		}
		return roots, errors.Join(errs...)
	}
}

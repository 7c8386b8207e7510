package supervisor

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// PidRecord is the content of a pid file. Pid is also the process group id
// (processes are started with Setpgid). StartTicks (the start time in
// /proc/PID/stat) and BootID identify the process even after its pid is
// reused; files written before they were recorded lack them.
type PidRecord struct {
	Name       string `json:"name"`
	Pid        int    `json:"pid"`
	StartTicks uint64 `json:"start_ticks"`
	BootID     string `json:"boot_id"`
	Exe        string `json:"exe"`
}

// ReadPidFile reads a pid file a supervisor wrote.
func ReadPidFile(path string) (PidRecord, error) {
	var rec PidRecord
	b, err := os.ReadFile(path)
	if err != nil {
		return rec, fmt.Errorf("read pid file: %w", err)
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, fmt.Errorf("pid file %s: %w", path, err)
	}
	if rec.Pid <= 1 {
		return rec, fmt.Errorf("pid file %s: pid %d", path, rec.Pid)
	}
	return rec, nil
}

// Current tells whether the process running under r.Pid now is the one
// recorded: same boot and same start time (/proc/PID/stat), so that a pid
// reused by another process after the recorded one ended (a stale pid file)
// does not count. A record without a start time (older files) is taken by
// its pid alone. When it is not, why says so.
func (r PidRecord) Current() (ok bool, why string) {
	st, err := readStat(r.Pid)
	if err != nil || st.Zombie() {
		return false, "process gone"
	}
	if r.BootID != "" && r.BootID != bootID() {
		return false, "recorded in an earlier boot"
	}
	if r.StartTicks != 0 && st.StartTicks != r.StartTicks {
		return false, "pid reused by an unrelated process"
	}
	return true, ""
}

// WritePidFile records pid under dir/<name>.pid (temp file + rename), with
// its start time, boot and executable: what the supervisor writes for each
// process it starts, for ReapStale and for whoever identifies its
// processes (the monitor's -managed-pid-dir).
func WritePidFile(dir, name string, pid int) (string, error) {
	st, err := readStat(pid)
	if err != nil {
		return "", fmt.Errorf("write pid file: %w", err)
	}
	exe, err := readExe(pid)
	if err != nil {
		return "", fmt.Errorf("write pid file: %w", err)
	}
	b, err := json.Marshal(PidRecord{Name: name, Pid: pid, StartTicks: st.StartTicks, BootID: bootID(), Exe: exe})
	if err != nil {
		return "", fmt.Errorf("write pid file: %w", err)
	}
	path := filepath.Join(dir, name+".pid")
	if err := writeFileAtomic(path, append(b, '\n')); err != nil {
		return "", fmt.Errorf("write pid file: %w", err)
	}
	return path, nil
}

func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// Reaped reports what ReapStale did with one pid file.
type Reaped struct {
	PidFile string
	Name    string
	Pid     int
	// Killed lists the pids that were killed (the engine and what was left
	// in its process group); empty when the engine was already gone or the
	// pid now belongs to an unrelated process.
	Killed []int
	// Note says why nothing was killed, if so.
	Note string
}

// ReapStale kills the engines recorded in the pid files under dir that a
// previous instance of the service left running (it died without stopping
// them), and removes those pid files. A process is killed only if it is the
// same one that was recorded: same boot, same start time and same
// executable; a pid reused by an unrelated process is left alone. If the
// engine itself is gone but processes it started are still in its process
// group (born after it, in the same boot), they are killed. Call it when the
// service starts, before starting engines.
func ReapStale(dir string, logger *slog.Logger) ([]Reaped, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	paths, err := filepath.Glob(filepath.Join(dir, "*.pid"))
	if err != nil {
		return nil, fmt.Errorf("reap stale engines: %w", err)
	}
	var out []Reaped
	var errs []error
	for _, path := range paths {
		r, err := reapOne(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if len(r.Killed) > 0 {
			logger.Warn("killed engine left by a previous instance", "name", r.Name, "pid", r.Pid, "killed", r.Killed)
		} else {
			logger.Info("removed stale pid file", "file", path, "note", r.Note)
		}
		out = append(out, r)
	}
	return out, errors.Join(errs...)
}

func reapOne(path string) (Reaped, error) {
	r := Reaped{PidFile: path}
	b, err := os.ReadFile(path)
	if err != nil {
		return r, fmt.Errorf("reap %s: %w", path, err)
	}
	var rec PidRecord
	if err := json.Unmarshal(b, &rec); err != nil || rec.Pid <= 1 {
		r.Note = "unreadable pid file"
		return r, removePidFile(path)
	}
	r.Name, r.Pid = rec.Name, rec.Pid
	if rec.BootID != "" && rec.BootID != bootID() {
		r.Note = "recorded in an earlier boot"
		return r, removePidFile(path)
	}
	victims, note := staleVictims(rec)
	r.Note = note
	for _, pid := range victims {
		if err := syscall.Kill(pid, syscall.SIGKILL); err == nil {
			r.Killed = append(r.Killed, pid)
		}
	}
	waitGone(r.Killed, 2*time.Second)
	return r, removePidFile(path)
}

// staleVictims returns the pids to kill for rec, or none and why.
func staleVictims(rec PidRecord) ([]int, string) {
	members, err := liveGroupMembers(rec.Pid)
	if err != nil {
		return nil, "cannot list processes: " + err.Error()
	}
	leader, err := readStat(rec.Pid)
	if err == nil && !leader.Zombie() {
		if leader.StartTicks != rec.StartTicks {
			return nil, "pid reused by an unrelated process"
		}
		exe, err := readExe(rec.Pid)
		if err != nil || exe != rec.Exe {
			return nil, "pid belongs to another executable"
		}
	}
	// The leader (if alive) is verified; the group id is the engine's pid,
	// and every member born after the engine belongs to it.
	var pids []int
	for _, m := range members {
		if m.StartTicks >= rec.StartTicks {
			pids = append(pids, m.Pid)
		}
	}
	if len(pids) == 0 {
		return nil, "engine already gone"
	}
	return pids, ""
}

// waitGone waits until none of pids is alive (absent or a zombie).
func waitGone(pids []int, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for _, pid := range pids {
		for time.Now().Before(deadline) {
			st, err := readStat(pid)
			if err != nil || st.Zombie() {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
}

func removePidFile(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove pid file: %w", err)
	}
	return nil
}

// validName reports whether name can be used as a file name in the pid
// directory: letters, digits, '.', '_', '-', not starting with '.'.
func validName(name string) bool {
	if name == "" || strings.HasPrefix(name, ".") || len(name) > 100 {
		return false
	}
	for _, c := range name {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}

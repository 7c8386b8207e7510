package supervisor

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// procStat is what the supervisor needs from /proc/<pid>/stat.
type procStat struct {
	Pid   int
	Comm  string
	State byte
	Ppid  int
	Pgrp  int
	// StartTicks is the start time in clock ticks since boot; with the boot
	// id it identifies a process even after its pid is reused.
	StartTicks uint64
}

// parseStat parses the contents of /proc/<pid>/stat. The command name may
// hold spaces and parentheses, so fields are counted from the last ')'.
func parseStat(b []byte) (procStat, error) {
	var st procStat
	open := bytes.IndexByte(b, '(')
	closing := bytes.LastIndexByte(b, ')')
	if open < 0 || closing < open {
		return st, errors.New("malformed stat: no command name")
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:open])))
	if err != nil {
		return st, fmt.Errorf("malformed stat pid: %w", err)
	}
	st.Pid, st.Comm = pid, string(b[open+1:closing])
	// Fields after the name, numbered as in proc(5): 3 state, 4 ppid,
	// 5 pgrp, ..., 22 starttime.
	f := strings.Fields(string(b[closing+1:]))
	if len(f) < 20 {
		return st, fmt.Errorf("malformed stat: %d fields after the name", len(f))
	}
	if len(f[0]) != 1 {
		return st, fmt.Errorf("malformed stat state %q", f[0])
	}
	st.State = f[0][0]
	if st.Ppid, err = strconv.Atoi(f[1]); err != nil {
		return st, fmt.Errorf("malformed stat ppid: %w", err)
	}
	if st.Pgrp, err = strconv.Atoi(f[2]); err != nil {
		return st, fmt.Errorf("malformed stat pgrp: %w", err)
	}
	if st.StartTicks, err = strconv.ParseUint(f[19], 10, 64); err != nil {
		return st, fmt.Errorf("malformed stat starttime: %w", err)
	}
	return st, nil
}

// Zombie reports whether the process has ended and waits to be reaped.
func (s procStat) Zombie() bool { return s.State == 'Z' || s.State == 'X' }

func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	return parseStat(b)
}

// readExe returns the executable of pid (without the " (deleted)" suffix the
// kernel adds when the file was replaced).
func readExe(pid int) (string, error) {
	exe, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(exe, " (deleted)"), nil
}

// bootID identifies the current boot; "" if unknown.
func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// liveGroupMembers returns the processes (not zombies) whose process group is
// pgid.
func liveGroupMembers(pgid int) ([]procStat, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []procStat
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readStat(pid)
		if err != nil || st.Zombie() || st.Pgrp != pgid {
			continue
		}
		out = append(out, st)
	}
	return out, nil
}

package membench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Resident is a process's resident set (/proc/PID/status), in bytes: all
// of it (VmRSS), its anonymous part (RssAnon: heap, stacks) and its
// file-backed part (RssFile: the executable, memory-mapped files such as a
// bbolt database, which the kernel can drop and reread).
type Resident struct {
	RSS, Anon, File int64
}

// RSS reads the resident set of process pid.
func RSS(pid int) (Resident, error) {
	var r Resident
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return r, fmt.Errorf("rss of %d: %w", pid, err)
	}
	fields := map[string]*int64{"VmRSS:": &r.RSS, "RssAnon:": &r.Anon, "RssFile:": &r.File}
	found := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text()) // "VmRSS:	12345 kB"
		dst, ok := fields[f[0]]
		if !ok {
			continue
		}
		if len(f) != 3 || f[2] != "kB" {
			return r, fmt.Errorf("rss of %d: odd line %q", pid, sc.Text())
		}
		kb, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return r, fmt.Errorf("rss of %d: %w", pid, err)
		}
		*dst = kb << 10
		found++
	}
	if found != len(fields) {
		return r, fmt.Errorf("rss of %d: VmRSS, RssAnon or RssFile missing (a kernel thread or a zombie)", pid)
	}
	return r, nil
}

// Name is the program name of process pid: the base name of its argv[0]
// (/proc/PID/cmdline; /proc/PID/comm would cut "genailab-orchestrator" to
// 15 bytes).
func Name(pid int) (string, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return "", fmt.Errorf("name of %d: %w", pid, err)
	}
	argv0, _, _ := bytes.Cut(data, []byte{0})
	if len(argv0) == 0 {
		return "", fmt.Errorf("name of %d: no command line", pid)
	}
	return filepath.Base(string(argv0)), nil
}

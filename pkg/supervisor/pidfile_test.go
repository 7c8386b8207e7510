package supervisor

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startStale starts a fake engine the way the supervisor does (own process
// group) but leaves it unsupervised, like the engine of a service that died.
// It returns the engine and the pid of the child it started.
func startStale(t *testing.T, mode string, args ...string) (*exec.Cmd, int) {
	t.Helper()
	cmd := exec.Command(testExe(t), append([]string{"fake", mode}, args...)...)
	cmd.Env = fakeEnv
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	errOut, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() })
	child := 0
	if slices.Contains(args, "child=1") {
		buf := make([]byte, 4096)
		var got []byte
		for !strings.Contains(string(got), "child pid ") || !strings.Contains(strings.SplitN(string(got), "child pid ", 2)[1], "\n") {
			n, err := errOut.Read(buf)
			if err != nil {
				t.Fatalf("reading fake output: %v (%q)", err, got)
			}
			got = append(got, buf[:n]...)
		}
		rest := strings.SplitN(string(got), "child pid ", 2)[1]
		child, _ = strconv.Atoi(rest[:strings.IndexByte(rest, '\n')])
	}
	go func() { // keep draining so the fake never blocks on a full pipe
		buf := make([]byte, 4096)
		for {
			if _, err := errOut.Read(buf); err != nil {
				return
			}
		}
	}()
	return cmd, child
}

func TestReapStaleKillsLeftEngineAndGroup(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cmd, child := startStale(t, "serve", "port=0", "child=1")
	pid := cmd.Process.Pid
	path, err := WritePidFile(dir, "llm", pid)
	if err != nil {
		t.Fatal(err)
	}
	reaped, err := ReapStale(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(reaped) != 1 || reaped[0].Pid != pid || reaped[0].Name != "llm" ||
		!slices.Contains(reaped[0].Killed, pid) || !slices.Contains(reaped[0].Killed, child) {
		t.Fatalf("reaped %+v (engine %d, child %d)", reaped, pid, child)
	}
	_ = cmd.Wait()
	assertGone(t, pid, pid, child)
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("pid file left: %v", err)
	}
}

// The engine died (e.g. by its parent-death signal) but a process it started
// is still in its group: that one is reaped.
func TestReapStaleKillsLeftoversOfDeadEngine(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cmd, child := startStale(t, "serve", "port=0", "child=1")
	pid := cmd.Process.Pid
	if _, err := WritePidFile(dir, "llm", pid); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Process.Kill() // the leader only
	_ = cmd.Wait()
	if !alive(child) {
		t.Fatal("child died with the leader; the test needs it alive")
	}
	reaped, err := ReapStale(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(reaped) != 1 || !slices.Equal(reaped[0].Killed, []int{child}) {
		t.Fatalf("reaped %+v, want child %d", reaped, child)
	}
	assertGone(t, pid, child)
}

// A pid file whose pid now belongs to another process (different start
// time, or another executable) must not kill that process.
func TestReapStaleSparesUnrelatedProcess(t *testing.T) {
	t.Parallel()
	cmd, _ := startStale(t, "sleep")
	pid := cmd.Process.Pid
	st, err := readStat(pid)
	if err != nil {
		t.Fatal(err)
	}
	exe, err := readExe(pid)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]PidRecord{
		"reused pid":      {Name: "a", Pid: pid, StartTicks: st.StartTicks - 1, BootID: bootID(), Exe: exe},
		"other exe":       {Name: "b", Pid: pid, StartTicks: st.StartTicks, BootID: bootID(), Exe: "/usr/bin/llama-server"},
		"earlier boot":    {Name: "c", Pid: pid, StartTicks: st.StartTicks, BootID: "00000000-0000-0000-0000-000000000000", Exe: exe},
		"newer than proc": {Name: "d", Pid: pid, StartTicks: st.StartTicks + 1, BootID: bootID(), Exe: exe},
	}
	for name, rec := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			b, _ := json.Marshal(rec)
			path := filepath.Join(dir, rec.Name+".pid")
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			reaped, err := ReapStale(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(reaped) != 1 || len(reaped[0].Killed) != 0 || reaped[0].Note == "" {
				t.Fatalf("reaped %+v", reaped)
			}
			time.Sleep(5 * time.Millisecond)
			if !alive(pid) {
				t.Fatal("unrelated process killed")
			}
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Fatal("stale pid file kept")
			}
		})
	}
}

func TestReapStaleGarbageAndGone(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "junk.pid"), []byte("not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A process that has ended: pid file of a reaped process.
	cmd := exec.Command("/bin/true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(PidRecord{Name: "gone", Pid: cmd.Process.Pid, StartTicks: 1, BootID: bootID(), Exe: "/bin/true"})
	if err := os.WriteFile(filepath.Join(dir, "gone.pid"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "other.txt"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	reaped, err := ReapStale(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(reaped) != 2 {
		t.Fatalf("reaped %+v", reaped)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "other.txt" {
		t.Fatalf("left in dir: %v", entries)
	}
	if r, err := ReapStale(filepath.Join(dir, "missing"), nil); err != nil || len(r) != 0 {
		t.Fatalf("missing dir: %v %v", r, err)
	}
}

func TestPidFileContent(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path, err := WritePidFile(dir, "self", os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rec PidRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	exe, _ := os.Executable()
	if rec.Pid != os.Getpid() || rec.StartTicks == 0 || rec.BootID == "" || rec.Exe != exe || rec.Name != "self" {
		t.Fatalf("record %+v", rec)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temp files left: %v", entries)
	}
}

// TestStalePidFileWithARecycledPidIsNotCurrent: a pid file whose pid now belongs to another
// process (recorded start time differs from /proc/PID/stat) is not current; nor is one of a
// process that is gone; one written before start times were recorded is taken by its pid.
func TestStalePidFileWithARecycledPidIsNotCurrent(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path, err := WritePidFile(dir, "self", os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	rec, err := ReadPidFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if ok, why := rec.Current(); !ok {
		t.Fatalf("this process's own record is not current: %s", why)
	}
	recycled := rec
	recycled.StartTicks++ // the recorded process started at another time: the pid was reused
	if ok, why := recycled.Current(); ok || why != "pid reused by an unrelated process" {
		t.Fatalf("recycled pid: %v %q", ok, why)
	}
	otherBoot := rec
	otherBoot.BootID = "another-boot"
	if ok, _ := otherBoot.Current(); ok {
		t.Fatal("a record of an earlier boot is current")
	}
	old := PidRecord{Name: "old", Pid: os.Getpid()}
	if ok, why := old.Current(); !ok {
		t.Fatalf("a record without start time: %s", why)
	}
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	gone := PidRecord{Name: "gone", Pid: cmd.Process.Pid, StartTicks: 1}
	if ok, _ := gone.Current(); ok {
		t.Fatal("an exited process's record is current")
	}
	if err := os.WriteFile(filepath.Join(dir, "bad.pid"), []byte(`{"pid":1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadPidFile(filepath.Join(dir, "bad.pid")); err == nil {
		t.Fatal("pid 1 accepted")
	}
}

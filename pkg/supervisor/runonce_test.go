package supervisor

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// onceSpec runs the test binary's one-shot fake (fakeOnce) with args.
func onceSpec(t testing.TB, args ...string) Spec {
	return Spec{
		Path:      testExe(t),
		Args:      append([]string{"fake", "once"}, args...),
		Env:       fakeEnv,
		TermGrace: 2 * time.Second,
	}
}

// childOf returns the pid in the "child pid N" line of lines, or 0.
func childOf(lines []Line) int {
	for _, l := range lines {
		if _, rest, ok := strings.Cut(l.Text, "child pid "); ok {
			pid, _ := strconv.Atoi(rest)
			return pid
		}
	}
	return 0
}

// The exit code comes back as a typed result, with the output: every line
// to OnLine, the raw reads to OnChunk, the last lines in Tail, each from the
// right stream; OnStart has the pid before any output is handled.
func TestRunOnceExitCodeAndOutput(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var started int
	var lines []Line
	var raw [3]bytes.Buffer
	sp := onceSpec(t, "out=hello on stdout", "err=oops on stderr", "code=3")
	sp.OnStart = func(pid int) { mu.Lock(); started = pid; mu.Unlock() }
	sp.OnLine = func(l Line) {
		mu.Lock()
		defer mu.Unlock()
		if started == 0 {
			t.Errorf("line %q handled before OnStart", l.Text)
		}
		lines = append(lines, l)
	}
	sp.OnChunk = func(s Stream, b []byte) { raw[s].Write(b) }
	res, err := RunOnce(context.Background(), sp)
	if err != nil {
		t.Fatal(err)
	}
	if res.Exit.Code != 3 || res.Exit.Signaled() || res.Stopped || res.Pid == 0 || res.Pid != started || res.StartedAt.IsZero() {
		t.Fatalf("result %+v (OnStart pid %d)", res, started)
	}
	want := map[string]Stream{"hello on stdout": Stdout, "oops on stderr": Stderr}
	if len(lines) != 2 || len(res.Tail) != 2 {
		t.Fatalf("lines %v tail %v", lines, res.Tail)
	}
	for i, l := range lines {
		if want[l.Text] != l.Stream || l.Pid != res.Pid || res.Tail[i].Text != l.Text {
			t.Errorf("line %+v, tail %+v", l, res.Tail[i])
		}
	}
	if raw[Stdout].String() != "hello on stdout\n" || raw[Stderr].String() != "oops on stderr\n" {
		t.Errorf("raw output %q %q", raw[Stdout].String(), raw[Stderr].String())
	}
	assertGone(t, res.Pid, res.Pid)
}

// A process killed by a signal says which; that is not an error of RunOnce.
func TestRunOnceSignalExit(t *testing.T) {
	t.Parallel()
	res, err := RunOnce(context.Background(), onceSpec(t, "die=SEGV"))
	if err != nil || res.Exit.Code != -1 || res.Exit.SignalName() != "SIGSEGV" || res.Stopped {
		t.Fatalf("result %+v, %v", res, err)
	}
}

// Cancelling the context stops the whole process group, a grandchild
// included, with the stop sequence: a negative SecondTermGrace sends one
// SIGTERM, the default two, before SIGKILL. Nothing is left in /proc.
func TestRunOnceCancelKillsTheGroup(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name       string
		term       string // the leader's answer to SIGTERM
		second     time.Duration
		sigterms   int
		killedBy   string
		grandchild string
	}{
		{"leader and grandchild ignore SIGTERM, one SIGTERM", "ignore", -1, 1, "SIGKILL", "stubborn"},
		{"leader and grandchild ignore SIGTERM, two SIGTERMs", "ignore", time.Second, 2, "SIGKILL", "stubborn"},
		// The leader exits on SIGTERM; the grandchild, which ignores it, is
		// killed before the leader is reaped.
		{"leader exits on SIGTERM, grandchild ignores it", "", -1, 1, "", "stubborn"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			cause := errors.New("the job was cancelled")
			sp := onceSpec(t, "child="+c.grandchild, "hang=1", "term="+c.term)
			// A grace long enough for the leader to log each SIGTERM on a busy machine.
			sp.TermGrace, sp.SecondTermGrace = time.Second, c.second
			var mu sync.Mutex
			var child int
			var ignoring, cancelled bool
			sp.OnLine = func(l Line) { // cancel once both run and the grandchild ignores SIGTERM
				mu.Lock()
				defer mu.Unlock()
				if pid := childOf([]Line{l}); pid != 0 {
					child = pid
				}
				ignoring = ignoring || strings.Contains(l.Text, "child: ignoring SIGTERM")
				// Only the first time: lines logged after the cancel (the leader's
				// "received SIGTERM") come while the group is being killed.
				if child != 0 && ignoring && !cancelled {
					cancelled = true
					if !alive(child) {
						t.Errorf("grandchild %d not running before the cancel", child)
					}
					cancel(cause)
				}
			}
			res, err := RunOnce(ctx, sp)
			if !errors.Is(err, cause) || !res.Stopped {
				t.Fatalf("result %+v, %v", res, err)
			}
			if got := res.Exit.SignalName(); got != c.killedBy {
				t.Errorf("leader ended by %q (%s), want %q", got, res.Exit, c.killedBy)
			}
			if n := linesContaining(res.Tail, "received SIGTERM"); n != c.sigterms {
				t.Errorf("%d SIGTERMs received, want %d: %v", n, c.sigterms, res.Tail)
			}
			mu.Lock()
			defer mu.Unlock()
			if child == 0 {
				t.Fatal("no grandchild reported")
			}
			assertGone(t, res.Pid, res.Pid, child)
		})
	}
}

// A leader that exits on its own leaves no orphan either: what is left of
// its group is killed before it is reaped, and RunOnce does not wait for it.
func TestRunOnceExitKillsLeftovers(t *testing.T) {
	t.Parallel()
	start := time.Now()
	res, err := RunOnce(context.Background(), onceSpec(t, "child=stubborn", "code=0"))
	if err != nil || res.Exit.Code != 0 || res.Stopped {
		t.Fatalf("result %+v, %v", res, err)
	}
	child := childOf(res.Tail)
	if child == 0 {
		t.Fatalf("no grandchild in %v", res.Tail)
	}
	assertGone(t, res.Pid, res.Pid, child)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s", d)
	}
}

// Arguments reach the program as they are: no shell expands, splits or
// runs anything in them.
func TestRunOnceNoShell(t *testing.T) {
	t.Parallel()
	marker := t.TempDir() + "/ran"
	args := []string{"$(touch " + marker + ")", "a; touch " + marker, "*", `"quoted" 'single'`, "$HOME", "a b"}
	sp := Spec{Path: testExe(t), Args: append([]string{"fake", "argv"}, args...), Env: fakeEnv}
	res, err := RunOnce(context.Background(), sp)
	if err != nil || res.Exit.Code != 0 {
		t.Fatalf("result %+v, %v", res, err)
	}
	var got []string
	for _, l := range res.Tail {
		got = append(got, strings.TrimPrefix(l.Text, "ARG "))
	}
	if strings.Join(got, "\x00") != strings.Join(args, "\x00") {
		t.Errorf("arguments\n got %q\nwant %q", got, args)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("a shell ran the arguments")
	}
}

// The environment is built as for a supervised process: EngineEnv keeps the
// service's tokens and settings out, Env adds what the job needs.
func TestRunOnceScrubbedEnvironment(t *testing.T) {
	t.Setenv("GENAILAB_TOKEN", "tok-secret")
	t.Setenv("HF_TOKEN", "tok-hf")
	sp := Spec{Path: testExe(t), Args: []string{"fake", "env", "exit=1"}, Env: append([]string{"JOB_SETTING=1"}, fakeEnv...),
		InheritEnv: true, KeepEnv: EngineEnv, TailLines: 1000}
	res, err := RunOnce(context.Background(), sp)
	if err != nil || res.Exit.Code != 0 {
		t.Fatalf("result %+v, %v", res, err)
	}
	env := map[string]bool{}
	for _, l := range res.Tail {
		env[strings.TrimPrefix(l.Text, "ENV ")] = true
	}
	if !env["PATH="+os.Getenv("PATH")] || !env["JOB_SETTING=1"] {
		t.Errorf("PATH or JOB_SETTING missing: %v", res.Tail)
	}
	for kv := range env {
		if strings.Contains(kv, "tok-") {
			t.Errorf("%s reached the process", kv)
		}
	}
}

// What only a Supervisor does is refused before anything starts; a program
// that cannot be started and an ended context are errors without a process.
func TestRunOnceRefusals(t *testing.T) {
	t.Parallel()
	probe := func(context.Context) (bool, error) { return true, nil }
	for name, sp := range map[string]Spec{
		"no path":     {},
		"ready probe": {Path: testExe(t), Ready: probe},
		"health":      {Path: testExe(t), HealthInterval: time.Second},
		"restart":     {Path: testExe(t), Restart: RestartPolicy{Enabled: true}},
		"port":        {Path: testExe(t), Port: 8080},
	} {
		if _, err := RunOnce(context.Background(), sp); !errors.Is(err, ErrInvalidSpec) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if res, err := RunOnce(context.Background(), Spec{Path: t.TempDir() + "/missing"}); !errors.Is(err, os.ErrNotExist) || res.Pid != 0 {
		t.Errorf("missing program: %+v, %v", res, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var started bool
	sp := onceSpec(t, "code=0")
	sp.OnStart = func(int) { started = true }
	if _, err := RunOnce(ctx, sp); !errors.Is(err, context.Canceled) || started {
		t.Errorf("ended context: started %v, %v", started, err)
	}
}

// The stop sequence reaches SIGKILL without a second SIGTERM when
// SecondTermGrace is negative, for a Supervisor's Stop too.
func TestStopWithoutSecondSIGTERM(t *testing.T) {
	t.Parallel()
	s := newSup(t, Config{})
	sp := fakeSpec(t, "hang", "term=ignore")
	sp.TermGrace, sp.SecondTermGrace = time.Second, -1
	if err := s.Start(context.Background(), sp); err != nil {
		t.Fatal(err)
	}
	pid := s.Snapshot().Pid
	waitLine(t, s, "loading model") // its SIGTERM handler is installed
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	snap := s.Snapshot()
	if snap.LastExit == nil || snap.LastExit.Signal != syscall.SIGKILL {
		t.Fatalf("last exit %v", snap.LastExit)
	}
	if n := linesContaining(s.LogTail(100), "received SIGTERM"); n != 1 {
		t.Errorf("%d SIGTERMs received, want 1", n)
	}
	assertGone(t, pid, pid)
}

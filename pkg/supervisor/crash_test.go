package supervisor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestKill9IsACrash(t *testing.T) {
	t.Parallel()
	s := newSup(t, Config{})
	ev := s.Events(0)
	if err := s.Start(context.Background(), serveSpec(t, "child=1")); err != nil {
		t.Fatal(err)
	}
	pid, child := s.Snapshot().Pid, childPid(t, s)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	e, _ := nextEvent(t, ev, EventCrashed)
	if e.Exit == nil || e.Exit.Signal != syscall.SIGKILL || e.Pid != pid || e.State != StateCrashed {
		t.Fatalf("crashed event: %+v", e)
	}
	snap := s.Snapshot()
	if snap.State != StateCrashed || snap.Pid != 0 || snap.LastError == nil ||
		!strings.Contains(snap.LastError.Error(), "killed by SIGKILL") {
		t.Fatalf("snapshot: %+v", snap)
	}
	// The rest of the group goes with the engine.
	assertGone(t, pid, pid, child)
	// No restart policy: nothing else happens; Stop clears the crash.
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := s.Snapshot().State; st != StateStopped {
		t.Fatalf("after Stop: %v", st)
	}
}

// A crash by SIGSEGV after ready restarts with growing delays until the
// budget is spent.
func TestCrashRestartBackoffGiveUp(t *testing.T) {
	t.Parallel()
	s := newSup(t, Config{})
	ev := s.Events(0)
	sp := serveSpec(t, "crash-after=50ms")
	sp.Restart = RestartPolicy{Enabled: true, MaxRestarts: 2, Window: time.Minute,
		Backoff: Backoff{Initial: 10 * time.Millisecond, Max: time.Second}}
	if err := s.Start(context.Background(), sp); err != nil {
		t.Fatal(err)
	}
	pids := map[int]bool{s.Snapshot().Pid: true}
	for attempt := 1; attempt <= 2; attempt++ {
		e, _ := nextEvent(t, ev, EventCrashed)
		if e.Exit == nil || e.Exit.Signal != syscall.SIGSEGV || e.Exit.SignalName() != "SIGSEGV" {
			t.Fatalf("crash %d: %+v", attempt, e.Exit)
		}
		e, _ = nextEvent(t, ev, EventRestarting)
		if want := 10 * time.Millisecond << (attempt - 1); e.Attempt != attempt || e.Delay != want {
			t.Fatalf("restarting: attempt %d delay %v, want %d %v", e.Attempt, e.Delay, attempt, want)
		}
		e, seen := nextEvent(t, ev, EventRestarted)
		if e.Attempt != attempt || len(seen) != 2 || seen[0] != EventStarted || seen[1] != EventReady {
			t.Fatalf("restarted: %+v after %v", e, seen)
		}
		if pids[e.Pid] {
			t.Fatalf("restart reused pid %d", e.Pid)
		}
		pids[e.Pid] = true
	}
	e, _ := nextEvent(t, ev, EventCrashed)
	if e.Exit.Signal != syscall.SIGSEGV {
		t.Fatalf("third crash: %v", e.Exit)
	}
	e, seen := nextEvent(t, ev, EventGaveUp)
	if len(seen) != 0 || e.Attempt != 2 || !strings.Contains(e.Err.Error(), "gave up after 2 restarts") {
		t.Fatalf("gave up: %+v after %v", e, seen)
	}
	snap := s.Snapshot()
	if snap.State != StateCrashed || snap.Restarts != 2 || !snap.NextRestartAt.IsZero() {
		t.Fatalf("snapshot: %+v", snap)
	}
	for pid := range pids {
		assertGone(t, pid, pid)
	}
	// A new Start after giving up is allowed and resets the budget.
	sp.Args = []string{"fake", "serve", "port=0"}
	if err := s.Start(context.Background(), sp); err != nil {
		t.Fatal(err)
	}
	if snap := s.Snapshot(); snap.Restarts != 0 || snap.State != StateRunning {
		t.Fatalf("after new Start: %+v", snap)
	}
}

// An automatic restart that fails to start counts against the budget, and
// Stop cancels a pending restart.
func TestRestartAttemptFailsThenStopCancels(t *testing.T) {
	t.Parallel()
	s := newSup(t, Config{})
	ev := s.Events(0)
	broken := filepath.Join(t.TempDir(), "model-gone")
	sp := serveSpec(t, "fail-if-exists="+broken)
	sp.Restart = RestartPolicy{Enabled: true, MaxRestarts: 3, Window: time.Minute,
		Backoff: Backoff{Initial: 100 * time.Millisecond, Max: time.Second}}
	if err := s.Start(context.Background(), sp); err != nil {
		t.Fatal(err)
	}
	// From now on the engine fails at start (its model "disappeared").
	if err := os.WriteFile(broken, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	pid := s.Snapshot().Pid
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	nextEvent(t, ev, EventCrashed)
	e, _ := nextEvent(t, ev, EventRestarting)
	if e.Attempt != 1 || e.Delay != 100*time.Millisecond {
		t.Fatalf("restarting: %+v", e)
	}
	e, seen := nextEvent(t, ev, EventCrashed)
	var se *StartError
	if !errors.As(e.Err, &se) || !errors.Is(e.Err, ErrExitedDuringStart) || e.Exit.Code != 1 ||
		len(seen) != 1 || seen[0] != EventStarted || !strings.Contains(se.Error(), "failed to open GGUF file") {
		t.Fatalf("failed restart attempt: %+v after %v", e, seen)
	}
	e, _ = nextEvent(t, ev, EventRestarting)
	if e.Attempt != 2 || e.Delay != 200*time.Millisecond {
		t.Fatalf("second restarting: %+v", e)
	}
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if snap := s.Snapshot(); snap.State != StateStopped || !snap.NextRestartAt.IsZero() {
		t.Fatalf("after Stop: %+v", snap)
	}
	// The cancelled restart must not fire (its delay was 200 ms).
	time.Sleep(300 * time.Millisecond)
	if kinds := drainKinds(ev); len(kinds) != 1 || kinds[0] != EventStopped {
		t.Fatalf("events after Stop: %v, want [stopped]", kinds)
	}
}

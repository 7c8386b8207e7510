package supervisor

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCrashLoopBacksOffAndNeverGivesUp is issue 14's "after 5 crashes in 5
// minutes the LLM stays down until a manual Start": with the default policy
// an engine that keeps failing is restarted for ever, the delay doubling up
// to its cap (as kubelet's CrashLoopBackOff, on a time scale of
// milliseconds), the snapshot and the events say "crash looping" with the
// last exit and when the next attempt is due, and the engine comes back by
// itself once the cause is gone.
func TestCrashLoopBacksOffAndNeverGivesUp(t *testing.T) {
	t.Parallel()
	s := newSup(t, Config{})
	ev := s.Events(0)
	broken := filepath.Join(t.TempDir(), "model-gone")
	sp := serveSpec(t, "fail-if-exists="+broken)
	// The default MaxRestarts (0): never give up. Far more attempts than the
	// old budget of 5 are made below.
	sp.Restart = RestartPolicy{Enabled: true, Backoff: Backoff{Initial: 2 * time.Millisecond, Max: 32 * time.Millisecond}}
	if err := s.Start(context.Background(), sp); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(broken, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(s.Snapshot().Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	const attempts = 12
	for attempt := 1; attempt <= attempts; attempt++ {
		e, seen := nextEvent(t, ev, EventRestarting, EventGaveUp)
		if e.Kind == EventGaveUp {
			t.Fatalf("gave up at attempt %d: %v", attempt, e.Err)
		}
		want := min(2*time.Millisecond<<(attempt-1), 32*time.Millisecond)
		if e.Attempt != attempt || e.Delay != want {
			t.Fatalf("restarting: attempt %d delay %v, want %d %v (after %v)", e.Attempt, e.Delay, attempt, want, seen)
		}
		if e.CrashLoop != (attempt >= CrashLoopThreshold) {
			t.Fatalf("attempt %d: CrashLoop %v", attempt, e.CrashLoop)
		}
		switch {
		case e.Exit == nil || e.Err == nil:
			t.Fatalf("attempt %d: restarting without the last exit and error: %+v", attempt, e)
		case attempt == 1 && e.Exit.Signal != syscall.SIGKILL:
			t.Fatalf("first restart after %v, want SIGKILL", e.Exit)
		case attempt > 1 && (e.Exit.Code != 1 || !strings.Contains(e.Err.Error(), "failed to open GGUF file")):
			t.Fatalf("attempt %d after %v: %v", attempt, e.Exit, e.Err)
		}
		if attempt >= CrashLoopThreshold {
			snap := s.Snapshot()
			if !snap.CrashLooping || snap.ConsecutiveCrashes < attempt || snap.LastExit == nil || snap.LastExit.Code != 1 {
				t.Fatalf("attempt %d: snapshot %+v", attempt, snap)
			}
			if snap.State == StateCrashed && snap.NextRestartAt.IsZero() {
				t.Fatalf("attempt %d: crash looping without a next attempt: %+v", attempt, snap)
			}
		}
	}
	// The cause goes away: the next attempt brings the engine back, and it
	// is no longer crash looping.
	if err := os.Remove(broken); err != nil {
		t.Fatal(err)
	}
	e, _ := nextEvent(t, ev, EventRestarted, EventGaveUp)
	if e.Kind != EventRestarted || e.Attempt < attempts {
		t.Fatalf("after the fix: %+v", e)
	}
	snap := s.Snapshot()
	if snap.State != StateRunning || snap.CrashLooping || snap.Restarts != e.Attempt || snap.ConsecutiveCrashes != e.Attempt {
		t.Fatalf("after the fix: %+v", snap)
	}
}

// A process that ran ready for ResetAfter before crashing starts a new
// streak: its restart comes after the initial delay and is attempt 1 again,
// however many crashes came before. Without a stable run the delay grows.
func TestCrashLoopStreakEndsAfterAStableRun(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		resetAfter time.Duration
		delays     []time.Duration
	}{
		{"stable runs", 20 * time.Millisecond, []time.Duration{5 * time.Millisecond, 5 * time.Millisecond, 5 * time.Millisecond}},
		{"short runs", time.Hour, []time.Duration{5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newSup(t, Config{})
			ev := s.Events(0)
			sp := serveSpec(t, "crash-after=60ms")
			sp.Restart = RestartPolicy{Enabled: true, ResetAfter: tc.resetAfter,
				Backoff: Backoff{Initial: 5 * time.Millisecond, Max: time.Second}}
			if err := s.Start(context.Background(), sp); err != nil {
				t.Fatal(err)
			}
			for i, want := range tc.delays {
				e, _ := nextEvent(t, ev, EventRestarting)
				attempt := i + 1
				if tc.resetAfter < time.Hour {
					attempt = 1
				}
				if e.Delay != want || e.Attempt != attempt || e.CrashLoop != (attempt >= CrashLoopThreshold) {
					t.Fatalf("restart %d: %+v, want delay %v attempt %d", i+1, e, want, attempt)
				}
				nextEvent(t, ev, EventRestarted)
			}
			if snap := s.Snapshot(); snap.Restarts != len(tc.delays) {
				t.Fatalf("snapshot: %+v", snap)
			}
		})
	}
}

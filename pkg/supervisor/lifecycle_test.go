package supervisor

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestStartReadyStop(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := newSup(t, Config{Name: "llm", PidDir: dir})
	ev := s.Events(0)
	ctx := context.Background()
	logFile := filepath.Join(dir, "llm.log")
	var saw503 atomic.Bool
	sp, port := startOnFreePort(t, s, func(sp *Spec) {
		sp.LogFile = logFile
		probe := sp.Ready
		sp.Ready = func(ctx context.Context) (bool, error) {
			ok, err := probe(ctx)
			if err != nil && strings.Contains(err.Error(), "503") {
				saw503.Store(true)
			}
			return ok, err
		}
	}, "delay=30ms", "loading=200ms", "child=1")
	snap := s.Snapshot()
	if snap.State != StateRunning || snap.Pid <= 0 || snap.Port != port || snap.Health != HealthOK {
		t.Fatalf("after Start: %+v", snap)
	}
	if snap.ReadyAt.Before(snap.StartedAt) || snap.StartedAt.IsZero() {
		t.Fatalf("times: started %v ready %v", snap.StartedAt, snap.ReadyAt)
	}
	pid, child := snap.Pid, childPid(t, s)
	if !alive(child) {
		t.Fatalf("child %d not alive", child)
	}
	kinds := drainKinds(ev)
	for len(kinds) > 0 && kinds[0] == EventStartFailed { // a port taken by someone else: retried
		kinds = kinds[1:]
	}
	if !slices.Equal(kinds, []EventKind{EventStarted, EventReady}) {
		t.Fatalf("events after Start: %v", kinds)
	}
	// The model was "loading" (503) for a while after the fake started
	// listening: the probe must have seen 503 before it saw 200.
	if !saw503.Load() {
		t.Fatal("the probe never saw 503: readiness did not wait for the model")
	}
	l := waitLine(t, s, "model loaded")
	if l.Message != "main: model loaded" || l.Stream != Stderr || l.Pid != pid || l.Level != slog.LevelInfo {
		t.Fatalf("parsed line: %+v", l)
	}
	b, err := os.ReadFile(filepath.Join(dir, "llm.pid"))
	if err != nil || !strings.Contains(string(b), `"pid":`) {
		t.Fatalf("pid file: %q %v", b, err)
	}

	// Start while running: sentinel error, nothing changes.
	if err := s.Start(ctx, sp); !errors.Is(err, ErrAlreadyRunning) {
		t.Fatalf("second Start: %v, want ErrAlreadyRunning", err)
	}
	if s.Snapshot().Pid != pid {
		t.Fatal("second Start changed the process")
	}

	if err := s.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	snap = s.Snapshot()
	if snap.State != StateStopped || snap.Pid != 0 || snap.LastExit == nil || snap.LastExit.Code != 0 {
		t.Fatalf("after Stop: %+v exit %v", snap, snap.LastExit)
	}
	assertGone(t, pid, pid, child)
	if kinds := drainKinds(ev); !slices.Equal(kinds, []EventKind{EventStopping, EventStopped}) {
		t.Fatalf("events after Stop: %v", kinds)
	}
	if _, err := os.Stat(filepath.Join(dir, "llm.pid")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("pid file left after stop: %v", err)
	}

	logText, err := os.ReadFile(logFile)
	if err != nil || !strings.Contains(string(logText), "received SIGTERM, shutting down") ||
		!strings.Contains(string(logText), "0.00.000.000 I main: model loaded\n") {
		t.Fatalf("log file: %v\n%s", err, logText)
	}

	// Stop when stopped: no-op.
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("Stop when stopped: %v", err)
	}
	if kinds := drainKinds(ev); len(kinds) != 0 {
		t.Fatalf("no-op Stop emitted %v", kinds)
	}
}

func TestRestart(t *testing.T) {
	t.Parallel()
	s := newSup(t, Config{})
	ctx := context.Background()
	if err := s.Restart(ctx); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Restart before Start: %v", err)
	}
	if err := s.Start(ctx, serveSpec(t)); err != nil {
		t.Fatal(err)
	}
	old := s.Snapshot().Pid
	ev := s.Events(0)
	if err := s.Restart(ctx); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	snap := s.Snapshot()
	if snap.State != StateRunning || snap.Pid == old || snap.Pid == 0 {
		t.Fatalf("after Restart: %+v (old pid %d)", snap, old)
	}
	assertGone(t, old, old)
	want := []EventKind{EventStopping, EventStopped, EventStarted, EventReady}
	if kinds := drainKinds(ev); !slices.Equal(kinds, want) {
		t.Fatalf("events %v, want %v", kinds, want)
	}
	// Restart from stopped starts the last spec again.
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Restart(ctx); err != nil || s.Snapshot().State != StateRunning {
		t.Fatalf("Restart from stopped: %v %v", err, s.Snapshot().State)
	}
}

// Readiness via the log line alone (no probe), as for an engine without a
// health endpoint.
func TestReadyOnLineOnly(t *testing.T) {
	t.Parallel()
	s := newSup(t, Config{})
	sp := serveSpec(t, "delay=20ms")
	sp.Ready = nil
	sp.ReadyOnLine = func(l Line) bool { return strings.Contains(l.Message, "HTTP server is listening") }
	if err := s.Start(context.Background(), sp); err != nil {
		t.Fatal(err)
	}
	if n := linesContaining(s.LogTail(20), "HTTP server is listening"); n != 1 {
		t.Fatalf("ready before the line was printed (%d)", n)
	}
}

func TestHealthChecks(t *testing.T) {
	t.Parallel()
	s := newSup(t, Config{})
	sp := serveSpec(t)
	healthy := make(chan bool, 1)
	healthy <- true
	sp.Health = func(ctx context.Context) (bool, error) {
		ok := <-healthy
		healthy <- ok
		if !ok {
			return false, errors.New("health: 503 Service Unavailable")
		}
		return true, nil
	}
	sp.HealthInterval = 5 * time.Millisecond
	ev := s.Events(0)
	if err := s.Start(context.Background(), sp); err != nil {
		t.Fatal(err)
	}
	<-healthy
	healthy <- false
	e, _ := nextEvent(t, ev, EventHealthChanged)
	if e.Health != HealthError || e.Err == nil || !strings.Contains(e.Err.Error(), "503") {
		t.Fatalf("unhealthy event: %+v", e)
	}
	if snap := s.Snapshot(); snap.Health != HealthError || snap.State != StateRunning {
		t.Fatalf("snapshot: %+v", snap)
	}
	<-healthy
	healthy <- true
	e, _ = nextEvent(t, ev, EventHealthChanged)
	if e.Health != HealthOK || e.Err != nil {
		t.Fatalf("healthy event: %+v", e)
	}
}

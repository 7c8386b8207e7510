package supervisor

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/genailab/genailab/pkg/ports"
)

func TestExitDuringStart(t *testing.T) {
	t.Parallel()
	s := newSup(t, Config{Name: "llm"})
	ev := s.Events(0)
	sp := serveSpec(t)
	sp.Args = []string{"fake", "fail"}
	sp.ReadyTimeout = time.Minute
	err := s.Start(context.Background(), sp)
	if !errors.Is(err, ErrExitedDuringStart) {
		t.Fatalf("Start: %v, want ErrExitedDuringStart", err)
	}
	var se *StartError
	if !errors.As(err, &se) || se.Exit == nil || se.Exit.Code != 1 || se.Exit.Signaled() {
		t.Fatalf("StartError: %#v", se)
	}
	if se.Elapsed > 30*time.Second { // it must not have waited for the timeout
		t.Fatalf("exit noticed only after %v", se.Elapsed)
	}
	if len(se.Tail) != 3 || !strings.Contains(se.Tail[1], "invalid magic characters") {
		t.Fatalf("tail: %q", se.Tail)
	}
	for _, want := range []string{"llm exited during start (exit code 1)", "invalid magic", "exiting due to model loading error"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	snap := s.Snapshot()
	if snap.State != StateStopped || !errors.Is(snap.LastError, ErrExitedDuringStart) || snap.LastExit.Code != 1 {
		t.Fatalf("snapshot: %+v", snap)
	}
	e, seen := nextEvent(t, ev, EventStartFailed)
	if len(seen) != 1 || seen[0] != EventStarted || e.Exit == nil || e.Exit.Code != 1 {
		t.Fatalf("events: %v then %+v", seen, e)
	}
}

func TestLaunchErrorBinaryMissing(t *testing.T) {
	t.Parallel()
	s := newSup(t, Config{})
	err := s.Start(context.Background(), Spec{Path: "/nonexistent/llama-server"})
	if !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("Start: %v, want ENOENT", err)
	}
	if snap := s.Snapshot(); snap.State != StateStopped || snap.LastError == nil {
		t.Fatalf("snapshot: %+v", snap)
	}
	if err := s.Start(context.Background(), Spec{}); !errors.Is(err, ErrInvalidSpec) {
		t.Fatalf("empty spec: %v", err)
	}
}

func TestStartTimeoutKillsGroup(t *testing.T) {
	t.Parallel()
	s := newSup(t, Config{})
	sp := serveSpecOn(t, freePort(t))
	sp.Args = []string{"fake", "hang", "term=ignore"}
	sp.Port = 0                               // the fake never listens; the probe gets connection refused
	sp.ReadyTimeout = 1500 * time.Millisecond // long enough for the fake to print its line, even on a busy machine
	err := s.Start(context.Background(), sp)
	if !errors.Is(err, ErrStartTimeout) {
		t.Fatalf("Start: %v, want ErrStartTimeout", err)
	}
	var se *StartError
	if !errors.As(err, &se) || !errors.Is(se.Cause, syscall.ECONNREFUSED) {
		t.Fatalf("cause: %#v", se)
	}
	if !strings.Contains(err.Error(), "this never ends") || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("error lacks tail or probe error: %v", err)
	}
	snap := s.Snapshot()
	if snap.State != StateStopped || snap.LastExit == nil || snap.LastExit.Signal != syscall.SIGKILL {
		t.Fatalf("snapshot: %+v", snap)
	}
	e, _ := nextEvent(t, s.Events(10), EventStarted)
	assertGone(t, e.Pid, e.Pid)
}

func TestPortInUse(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	s := newSup(t, Config{})
	ev := s.Events(0)
	err = s.Start(context.Background(), serveSpecOn(t, port))
	if !errors.Is(err, ErrPortInUse) || !errors.Is(err, ports.ErrPortInUse) {
		t.Fatalf("Start: %v, want ErrPortInUse", err)
	}
	if !strings.Contains(err.Error(), "port "+strconv.Itoa(port)+" is already in use") {
		t.Fatalf("message: %v", err)
	}
	if kinds := drainKinds(ev); len(kinds) != 1 || kinds[0] != EventStartFailed {
		t.Fatalf("events: %v (nothing may be launched)", kinds)
	}
}

func TestStartContextCancelAborts(t *testing.T) {
	t.Parallel()
	s := newSup(t, Config{})
	sp := serveSpec(t)
	sp.Args = []string{"fake", "hang", "term=ignore"}
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	err := s.Start(ctx, sp)
	if !errors.Is(err, ErrStartAborted) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Start: %v, want ErrStartAborted and DeadlineExceeded", err)
	}
	if snap := s.Snapshot(); snap.State != StateStopped {
		t.Fatalf("state %v", snap.State)
	}
	e, _ := nextEvent(t, s.Events(10), EventStarted)
	assertGone(t, e.Pid, e.Pid)
	// The supervisor is usable again.
	if err := s.Start(context.Background(), serveSpec(t)); err != nil {
		t.Fatalf("Start after abort: %v", err)
	}
}

func TestStopDuringStart(t *testing.T) {
	t.Parallel()
	s := newSup(t, Config{})
	sp := serveSpec(t)
	sp.Args = []string{"fake", "hang"}
	ev := s.Events(0)
	res := make(chan error, 1)
	go func() { res <- s.Start(context.Background(), sp) }()
	e, _ := nextEvent(t, ev, EventStarted)
	if err := s.Stop(context.Background()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := <-res; !errors.Is(err, ErrStartAborted) {
		t.Fatalf("Start: %v, want ErrStartAborted", err)
	}
	if snap := s.Snapshot(); snap.State != StateStopped {
		t.Fatalf("state %v", snap.State)
	}
	assertGone(t, e.Pid, e.Pid)
}

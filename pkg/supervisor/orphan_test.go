package supervisor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Cancelling the supervisor's context stops the engine (and its group) and
// ends the supervisor.
func TestContextCancelStopsEverything(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := New(ctx, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background(), serveSpec(t, "child=1")); err != nil {
		t.Fatal(err)
	}
	pid, child := s.Snapshot().Pid, childPid(t, s)
	ev := s.Events(0)
	cancel()
	select {
	case <-s.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("supervisor did not end")
	}
	assertGone(t, pid, pid, child)
	if snap := s.Snapshot(); snap.State != StateStopped {
		t.Fatalf("final state %v", snap.State)
	}
	if kinds := drainKinds(ev); strings.Join(kindsStrings(kinds), ",") != "stopping,stopped" {
		t.Fatalf("events %v", kinds)
	}
	if _, err := ev.Next(context.Background()); err == nil {
		t.Fatal("event ring not closed")
	}
	if err := s.Start(context.Background(), serveSpec(t)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Start after close: %v", err)
	}
	if err := s.Stop(context.Background()); err != nil {
		t.Fatalf("Stop after close: %v", err)
	}
}

// Close while a start is in progress aborts it and leaves nothing behind.
func TestCloseDuringStart(t *testing.T) {
	t.Parallel()
	s, err := New(context.Background(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	sp := serveSpec(t)
	sp.Args = []string{"fake", "hang", "term=ignore"}
	ev := s.Events(0)
	res := make(chan error, 1)
	go func() { res <- s.Start(context.Background(), sp) }()
	e, _ := nextEvent(t, ev, EventStarted)
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-res; !errors.Is(err, ErrStartAborted) || !errors.Is(err, ErrClosed) {
		t.Fatalf("Start: %v", err)
	}
	assertGone(t, e.Pid, e.Pid)
}

func kindsStrings(kinds []EventKind) []string {
	out := make([]string, len(kinds))
	for i, k := range kinds {
		out[i] = string(k)
	}
	return out
}

// When the service itself is killed (SIGKILL: no cleanup code runs), the
// engine dies too, by its parent-death signal. The host also ended a number
// of OS threads before reporting, so the engine's death is tied to the right
// thread, not to any thread of the service.
func TestEngineDiesWithKilledService(t *testing.T) {
	t.Parallel()
	engineDiesWithKilledHost(t)
}

// The same for a process run by RunOnce: it dies by its parent-death signal
// when its service is killed, and not earlier, when the service ends threads.
func TestRunOnceEngineDiesWithKilledService(t *testing.T) {
	t.Parallel()
	engineDiesWithKilledHost(t, "once=1")
}

// engineDiesWithKilledHost runs the fake host (fakeHost) with args, kills it
// with SIGKILL once it reports its engine, and checks the engine dies too.
func engineDiesWithKilledHost(t *testing.T, args ...string) {
	host := exec.Command(testExe(t), append([]string{"fake", "host"}, args...)...)
	host.Env = fakeEnv
	host.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := host.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := host.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = syscall.Kill(-host.Process.Pid, syscall.SIGKILL); _ = host.Wait() }()
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "engine pid ") {
				line <- sc.Text()
				return
			}
		}
		close(line)
	}()
	var engine int
	var state string
	select {
	case l, ok := <-line:
		if !ok {
			t.Fatal("host ended without reporting its engine")
		}
		if _, err := fmt.Sscanf(l, "engine pid %d state %s", &engine, &state); err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("host did not report its engine")
	}
	if state != "running" || !alive(engine) {
		t.Fatalf("engine %d state %s alive %v after the host ended threads", engine, state, alive(engine))
	}
	st, err := readStat(engine)
	if err != nil || st.Pgrp != engine || st.Ppid != host.Process.Pid {
		t.Fatalf("engine stat %+v (host %d): %v", st, host.Process.Pid, err)
	}

	if err := syscall.Kill(host.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = host.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for alive(engine) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(-engine, syscall.SIGKILL)
			t.Fatalf("engine %d outlived its killed service", engine)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

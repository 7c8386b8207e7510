package service

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/genailab/genailab/pkg/supervisor"
)

func TestCheckBindAllowsLoopbackOnly(t *testing.T) {
	s := &Service{}
	for _, h := range []string{"", "localhost", "127.0.0.1", "127.0.0.2", "::1"} {
		if err := s.checkBind(h); err != nil {
			t.Errorf("%q refused: %v", h, err)
		}
	}
	for _, h := range []string{"0.0.0.0", "::", "192.0.2.1", "10.0.0.1", "fe80::1"} {
		if err := s.checkBind(h); !errors.Is(err, ErrRemoteBind) || !strings.Contains(err.Error(), "-allow-engine-remote-bind") {
			t.Errorf("%q: %v", h, err)
		}
	}
	s.opts.AllowRemoteBind = true
	if err := s.checkBind("0.0.0.0"); err != nil {
		t.Errorf("allowed: %v", err)
	}
}

func TestCrashLoopMessage(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	snap := supervisor.Snapshot{
		State: supervisor.StateCrashed, CrashLooping: true, ConsecutiveCrashes: 7,
		LastExit:      &supervisor.ExitStatus{Code: 1, At: now.Add(-time.Second)},
		NextRestartAt: now.Add(40 * time.Second),
		LastError:     errors.New("llama-server exited during start"),
	}
	want := "crash looping: llama-server failed 7 times in a row (last exit: exit code 1 at 2026-01-02T03:04:04Z); " +
		"next attempt at 2026-01-02T03:04:45Z (in 40s); last error: llama-server exited during start"
	if got := crashLoopMessage(snap, now); got != want {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
	snap.State, snap.NextRestartAt = supervisor.StateStarting, time.Time{}
	if got := crashLoopMessage(snap, now); !strings.Contains(got, "an attempt to restart it is in progress") {
		t.Fatal(got)
	}
}

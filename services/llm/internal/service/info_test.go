package service

import (
	"testing"
	"time"

	"github.com/genailab/genailab/pkg/supervisor"
)

// Issue 14 item 9: GetInfo told the crash-loop backoff only in last_error's words. Its
// fields carry it: crash looping, the crashes in a row and when the next attempt is due,
// next to the last exit; none of them once the server runs again.
func TestInfoReportsTheRestartBackoff(t *testing.T) {
	next := time.Date(2026, 1, 2, 3, 4, 45, 0, time.UTC)
	looping := (&Service{}).infoFrom(supervisor.Snapshot{
		State: supervisor.StateCrashed, CrashLooping: true, ConsecutiveCrashes: 7, Restarts: 9,
		LastExit:      &supervisor.ExitStatus{Code: 1, At: next.Add(-41 * time.Second)},
		NextRestartAt: next,
	})
	if !looping.GetCrashLooping() || looping.GetConsecutiveCrashes() != 7 || looping.GetRestarts() != 9 ||
		!looping.GetNextRestartAt().AsTime().Equal(next) || looping.GetLastExit().GetExitCode() != 1 {
		t.Fatalf("crash looping: %v", looping)
	}
	running := (&Service{}).infoFrom(supervisor.Snapshot{State: supervisor.StateRunning, Restarts: 9})
	if running.GetCrashLooping() || running.GetConsecutiveCrashes() != 0 || running.NextRestartAt != nil {
		t.Fatalf("running: %v", running)
	}
}

package supervisor

import "time"

// Snapshot is an immutable view of a supervised process. Readers never wait
// for the supervisor's goroutine to get one.
type Snapshot struct {
	Name  string
	State State
	// Pid and Port of the current process; 0 when there is none.
	Pid  int
	Port int
	// StartedAt is when the current (or last) process was launched; ReadyAt
	// when it became ready (zero until then).
	StartedAt time.Time
	ReadyAt   time.Time
	// LastExit is how the last process ended; nil if none ended yet.
	LastExit *ExitStatus
	// Restarts counts the automatic restarts since the last Start.
	Restarts int
	// ConsecutiveCrashes counts the crashes in a row, each followed by an
	// automatic restart, since the last Start or the last stable run (see
	// RestartPolicy.ResetAfter); it drives the restart delay.
	ConsecutiveCrashes int
	// CrashLooping: ConsecutiveCrashes reached CrashLoopThreshold and the
	// next automatic restart is pending (NextRestartAt) or starting.
	// LastExit and LastError say how the last attempt ended.
	CrashLooping bool
	// NextRestartAt is when a pending automatic restart fires (zero if none).
	NextRestartAt time.Time
	// LastError is the latest failure (start failure, crash, give-up); nil
	// after a successful start.
	LastError error
	// Health of the running process: ok once ready, then updated by the
	// health probe. HealthError holds the probe's error.
	Health          Health
	HealthError     error
	HealthCheckedAt time.Time
}

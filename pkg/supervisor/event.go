package supervisor

import "time"

// EventKind names a transition.
type EventKind string

// Event kinds.
const (
	// EventStarted: the process was launched (state starting).
	EventStarted EventKind = "started"
	// EventReady: the process became ready (state running).
	EventReady EventKind = "ready"
	// EventStartFailed: a start failed (Err holds a *StartError or the
	// launch error).
	EventStartFailed EventKind = "start_failed"
	// EventStopping: a stop began.
	EventStopping EventKind = "stopping"
	// EventStopped: the process ended after a stop (state stopped).
	EventStopped EventKind = "stopped"
	// EventCrashed: the process ended without being asked to (Exit says
	// how).
	EventCrashed EventKind = "crashed"
	// EventRestarting: an automatic restart is scheduled after Delay
	// (Attempt counts the crashes of the streak, this one included; Exit and
	// Err say how the last process ended; CrashLoop from
	// CrashLoopThreshold crashes in a row).
	EventRestarting EventKind = "restarting"
	// EventRestarted: an automatic restart made the process ready again.
	EventRestarted EventKind = "restarted"
	// EventGaveUp: the restart budget (a positive RestartPolicy.MaxRestarts)
	// is spent; the process stays crashed.
	EventGaveUp EventKind = "gave_up"
	// EventHealthChanged: the health probe result changed (Health, Err).
	EventHealthChanged EventKind = "health_changed"
)

// Event is one transition of a supervised process.
type Event struct {
	Time time.Time
	Kind EventKind
	// Name is the supervisor's name.
	Name string
	// State is the state after the event.
	State State
	// Pid of the process the event is about, if any.
	Pid int
	// Exit is set for crashed, stopped and start_failed events when the
	// process has ended, and for restarting and gave_up events (the exit of
	// the last process, if one ended).
	Exit *ExitStatus
	// Health is set for health_changed events.
	Health Health
	// Attempt and Delay are set for restarting, restarted and gave_up; the
	// restart of a restarting event is due at Time + Delay.
	Attempt int
	Delay   time.Duration
	// CrashLoop is set for restarting events from CrashLoopThreshold crashes
	// in a row.
	CrashLoop bool
	// Err explains start_failed, crashed, gave_up and unhealthy events.
	Err error
}

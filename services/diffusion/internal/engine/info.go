package engine

import (
	"time"

	"github.com/genailab/genailab/pkg/supervisor"
	"github.com/genailab/genailab/services/diffusion/internal/sdprogress"
)

// Progress is the state of a generation in progress.
type Progress struct {
	// Stage is sdprogress's stage, or StageQueued (server mode, before sd-server picks the job
	// up).
	Stage      sdprogress.Stage
	Step       int
	TotalSteps int
	Percent    float64
	// StagePercent is how far the current stage is, when known (see sdprogress.Progress).
	StagePercent float64
	// LoadingWeights: the engine is loading a model part's weights.
	LoadingWeights bool
	Elapsed        time.Duration
	StepsPerSecond float64
	Message        string
}

// Info is a snapshot of an engine. Status and Health are the supervisor's: a CLI-mode engine
// has no process between images but goes through the same states as sd-server.
type Info struct {
	Status  supervisor.State
	Health  supervisor.Health
	Busy    bool
	PID     int
	Port    int
	ModelID string
	Config  Config
	Binary  string
	Demo    bool
	// Unavailable says why the engine cannot run (no binary found), with how to configure one.
	Unavailable string
	LastError   string
	StartedAt   time.Time
	// Current is the progress of the generation in progress, if any.
	Current *Progress
}

// The engine's own event kinds. Its lifecycle events are the supervisor's kinds with their
// meaning: supervisor.EventReady (the engine runs: started, or sd-server restarted on request),
// EventStopped (also a failed Start), EventCrashed (also a failed restart), EventRestarted and
// EventGaveUp (sd-server's automatic restarts).
const (
	// EventGenerationStarted: a generation started.
	EventGenerationStarted supervisor.EventKind = "generation_started"
	// EventGenerationFinished: a generation finished (successfully or not; the message says).
	EventGenerationFinished supervisor.EventKind = "generation_finished"
)

// Event is one lifecycle event, with the snapshot right after it.
type Event struct {
	Type    supervisor.EventKind
	Time    time.Time
	Info    Info
	Message string
	// Exit is how the engine process ended (crashes).
	Exit *supervisor.ExitStatus
}

// LogLine is one line of engine output, or of the service about it (Stream is
// supervisor.Service).
type LogLine struct {
	Time    time.Time
	Level   sdprogress.Level
	Message string
	Raw     string
	Stream  supervisor.Stream
}

// Result is a finished image.
type Result struct {
	PNG           []byte
	Seed          int64
	Width, Height int
	TimeTaken     time.Duration
	Demo          bool
}

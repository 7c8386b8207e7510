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
	// ImageIndex is the batch image being made (0-based) of ImageCount.
	ImageIndex, ImageCount int
	// Preview is set on the update that carries a new preview image.
	Preview *Preview
}

// Preview is a preview image (a PNG at most sdcli.MaxPreviewSide pixels on its long side).
type Preview struct {
	PNG           []byte
	Width, Height int
	// Step is the sampling step it shows, of batch image ImageIndex.
	Step, ImageIndex int
	// Written is when the engine wrote it; Read when the service read it.
	Written, Read time.Time
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
	// Capabilities of the running engine; zero when it is stopped.
	Capabilities Capabilities
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

// Result is a finished image, or batch: PNG and Seed are image 0, Batch images 1..n-1.
type Result struct {
	PNG           []byte
	Seed          int64
	Width, Height int
	TimeTaken     time.Duration
	Demo          bool
	Batch         []BatchImage
}

// BatchImage is one further image of a batch, with the seed that makes it alone.
type BatchImage struct {
	PNG  []byte
	Seed int64
}

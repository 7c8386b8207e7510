package engine

import (
	"time"

	"github.com/genailab/genailab/services/diffusion/internal/sdprogress"
)

// Status is the lifecycle state of an engine.
type Status uint8

const (
	StatusStopped Status = iota + 1
	StatusStarting
	StatusRunning
	StatusStopping
	StatusCrashed
)

func (s Status) String() string {
	switch s {
	case StatusStopped:
		return "stopped"
	case StatusStarting:
		return "starting"
	case StatusRunning:
		return "running"
	case StatusStopping:
		return "stopping"
	case StatusCrashed:
		return "crashed"
	default:
		return "unknown"
	}
}

// Health is the result of the latest health check.
type Health uint8

const (
	HealthUnknown Health = iota + 1
	HealthOK
	HealthError
)

// Stage is the phase of a generation: sdprogress's stages plus Queued (server mode, before
// sd-server picks the job up).
type Stage uint8

const (
	StageQueued Stage = iota + 1
	StageLoading
	StageEncoding
	StageSampling
	StageDecoding
	StageDone
)

func (s Stage) String() string {
	switch s {
	case StageQueued:
		return "queued"
	case StageLoading:
		return "loading"
	case StageEncoding:
		return "encoding"
	case StageSampling:
		return "sampling"
	case StageDecoding:
		return "decoding"
	case StageDone:
		return "done"
	default:
		return "unknown"
	}
}

func stageOf(s sdprogress.Stage) Stage {
	switch s {
	case sdprogress.StageEncoding:
		return StageEncoding
	case sdprogress.StageSampling:
		return StageSampling
	case sdprogress.StageDecoding:
		return StageDecoding
	case sdprogress.StageDone:
		return StageDone
	default:
		return StageLoading
	}
}

// Progress is the state of a generation in progress.
type Progress struct {
	Stage      Stage
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

// Info is a snapshot of an engine.
type Info struct {
	Status  Status
	Health  Health
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

// EventType is the kind of a lifecycle event.
type EventType uint8

const (
	EventStarted EventType = iota + 1
	EventStopped
	EventCrashed
	EventGenerationStarted
	EventGenerationFinished
)

func (t EventType) String() string {
	switch t {
	case EventStarted:
		return "started"
	case EventStopped:
		return "stopped"
	case EventCrashed:
		return "crashed"
	case EventGenerationStarted:
		return "generation-started"
	case EventGenerationFinished:
		return "generation-finished"
	default:
		return "unknown"
	}
}

// Exit is how an engine process ended.
type Exit struct {
	// Code is the exit code, -1 when killed by Signal.
	Code   int
	Signal string
	Time   time.Time
}

// Event is one lifecycle event, with the snapshot right after it.
type Event struct {
	Type    EventType
	Time    time.Time
	Info    Info
	Message string
	Exit    *Exit
}

// Stream names the output a log line came from.
type Stream uint8

const (
	StreamService Stream = iota // written by the service itself
	StreamStdout
	StreamStderr
)

// LogLine is one line of engine output.
type LogLine struct {
	Time    time.Time
	Level   sdprogress.Level
	Message string
	Raw     string
	Stream  Stream
}

// Result is a finished image.
type Result struct {
	PNG           []byte
	Seed          int64
	Width, Height int
	TimeTaken     time.Duration
	Demo          bool
}

package supervisor

// State is where a supervised process is in its life cycle.
type State int

// The states of a supervised process.
const (
	// StateStopped: no process; never started, stopped on request, or a
	// start failed.
	StateStopped State = iota
	// StateStarting: the process runs and readiness is awaited.
	StateStarting
	// StateRunning: the process is ready.
	StateRunning
	// StateStopping: the process is being stopped (also while a failed
	// start is being cleaned up).
	StateStopping
	// StateCrashed: the process ended without being asked to; an automatic
	// restart may be pending.
	StateCrashed
)

func (s State) String() string {
	switch s {
	case StateStopped:
		return "stopped"
	case StateStarting:
		return "starting"
	case StateRunning:
		return "running"
	case StateStopping:
		return "stopping"
	case StateCrashed:
		return "crashed"
	}
	return "unknown"
}

// Health is the result of the latest health probe of a running process.
type Health int

// Health values.
const (
	HealthUnknown Health = iota
	HealthOK
	HealthError
)

func (h Health) String() string {
	switch h {
	case HealthOK:
		return "ok"
	case HealthError:
		return "error"
	}
	return "unknown"
}

package supervisor

import (
	"bufio"
	"context"
	"fmt"
	"time"
)

// Probe reports whether the process is ready (or healthy). An error means
// "not yet" and is kept to explain a timeout; it does not end the wait.
// It must honour ctx.
type Probe func(ctx context.Context) (bool, error)

// Spec says how to run one engine process. Engine specifics (arguments,
// probe, parser, consumers) live here; the supervisor knows none of them.
type Spec struct {
	// Path of the executable. A bare name is looked up in PATH. No shell is
	// ever involved.
	Path string
	Args []string
	// Dir is the working directory ("" = the service's).
	Dir string

	// Env is the process environment. With InheritEnv the service's own
	// environment comes first: only the names KeepEnv accepts when it is set
	// (an allow-list such as EngineEnv), minus the names DropEnv returns true
	// for; entries of Env win over inherited ones.
	Env        []string
	InheritEnv bool
	KeepEnv    func(key string) bool
	DropEnv    func(key string) bool

	// Host and Port the engine will listen on. A non-zero Port is checked to
	// be free right before launch (ErrPortInUse) and is reported in
	// snapshots. The supervisor does not pass them to the engine: put them
	// in Args.
	Host string
	Port int

	// Ready is polled from launch until it returns true, starting after
	// ProbeBackoff.Initial and doubling up to ProbeBackoff.Max. A line for
	// which ReadyOnLine returns true triggers an immediate probe (and is
	// itself the readiness signal when Ready is nil). With neither, the
	// process counts as ready once launched.
	Ready        Probe
	ReadyOnLine  func(Line) bool
	ReadyTimeout time.Duration // default 60s; on expiry the group is killed
	ProbeTimeout time.Duration // bound on one probe call, default 2s
	ProbeBackoff Backoff       // default 1ms doubling to 50ms

	// Health is probed every HealthInterval while running (Ready is used
	// when Health is nil). 0 disables health checks.
	Health         Probe
	HealthInterval time.Duration

	// Stop: SIGTERM, wait TermGrace, SIGTERM again, wait SecondTermGrace,
	// SIGKILL. Defaults 5s and TermGrace. A negative SecondTermGrace sends
	// no second SIGTERM: SIGKILL follows TermGrace after the first (an
	// engine without a SIGTERM handler, which the first one ends).
	TermGrace       time.Duration
	SecondTermGrace time.Duration
	// TermRepeat, when positive, sends the first SIGTERM again if the
	// process is still running TermRepeat after it, before TermGrace
	// starts: an engine that drops a SIGTERM arriving as it finishes
	// starting (llama-server, just after it starts listening) is then
	// stopped in about TermRepeat, not after TermGrace. 0 sends no repeat.
	TermRepeat time.Duration

	// Restart is the automatic restart policy after a crash.
	Restart RestartPolicy

	// OnStart, if set, is called with the pid once the process runs, before
	// any of its output is handled. It must be quick: it runs on the
	// thread that owns the process.
	OnStart func(pid int)

	// Output handling. Split cuts the output into lines (default ScanLines;
	// ScanTerminal also cuts at '\r' and after ESC[K). Lines longer than
	// MaxLineBytes (default 64 KiB) are delivered in pieces. Parse fills
	// Line.Level and Line.Message. OnChunk receives every raw read as soon
	// as it returns (the slice is only valid during the call); OnLine
	// receives every line as soon as it is cut. Calls to OnChunk and OnLine
	// never overlap (stdout and stderr are handled in turn). They run on the
	// output readers and must be quick: a slow consumer stalls the process
	// once its pipe fills.
	Split        bufio.SplitFunc
	MaxLineBytes int
	Parse        Parser
	OnChunk      func(Stream, []byte)
	OnLine       func(Line)

	// LogFile, if set, receives every line, rotated at LogFileMaxBytes
	// (default 10 MiB) keeping LogFileKeep old files (default 3; -1 = none).
	LogFile         string
	LogFileMaxBytes int64
	LogFileKeep     int

	// TailLines is how many output lines a StartError carries (default 20).
	TailLines int
	// OutputDrain bounds how long, after the process exited, its output is
	// still read (a leftover process holding the pipes cannot stall exit
	// handling). Default 1s. It is also the exec.Cmd WaitDelay.
	OutputDrain time.Duration
}

// Backoff is an exponential delay: Initial, doubled each time, at most Max.
type Backoff struct {
	Initial time.Duration
	Max     time.Duration
}

// next returns the delay after d.
func (b Backoff) next(d time.Duration) time.Duration {
	d *= 2
	if d > b.Max {
		d = b.Max
	}
	return d
}

// RestartPolicy controls automatic restarts after a crash. A crash is any
// exit the supervisor did not ask for while running, or the failure of an
// automatic restart attempt. A failed Start by the caller is reported to the
// caller and not restarted.
//
// Restarts go on like Kubernetes' CrashLoopBackOff: by default the
// supervisor never gives up, and the delay doubles with every crash of a
// streak, up to Backoff.Max. A process that ran ready for ResetAfter before
// it crashed ends the streak: the next delay is Backoff.Initial again. From
// CrashLoopThreshold crashes in a row the process is crash looping
// (Snapshot.CrashLooping, Event.CrashLoop).
type RestartPolicy struct {
	Enabled bool
	// MaxRestarts, when positive, is a budget: once MaxRestarts restarts
	// happened within Window the supervisor gives up (EventGaveUp) and the
	// process stays crashed until the next Start. The default, 0, never
	// gives up. Window defaults to 5 minutes.
	MaxRestarts int
	Window      time.Duration
	// Backoff before restart k of a streak (k crashes already in it) is
	// Initial*2^k, at most Max. Defaults 500ms and 5 minutes.
	Backoff Backoff
	// ResetAfter is how long a process must have run ready for its crash to
	// start a new streak. Default 10 minutes.
	ResetAfter time.Duration
}

// CrashLoopThreshold is the number of crashes in a row (without a run of
// RestartPolicy.ResetAfter between them) from which a process whose
// restart is pending or in progress is crash looping.
const CrashLoopThreshold = 2

// Defaults.
const (
	DefaultReadyTimeout = 60 * time.Second
	DefaultProbeTimeout = 2 * time.Second
	DefaultTermGrace    = 5 * time.Second
	DefaultMaxLineBytes = 64 << 10
	DefaultTailLines    = 20
	DefaultOutputDrain  = time.Second
	DefaultProbeInitial = time.Millisecond
	DefaultProbeMax     = 50 * time.Millisecond
	// DefaultMaxRestarts 0: never give up.
	DefaultMaxRestarts       = 0
	DefaultRestartWindow     = 5 * time.Minute
	DefaultRestartInitial    = 500 * time.Millisecond
	DefaultRestartMaxDelay   = 5 * time.Minute
	DefaultRestartResetAfter = 10 * time.Minute
)

// withDefaults returns a copy of s with zero values replaced by defaults, or
// an error wrapping ErrInvalidSpec.
func (s Spec) withDefaults() (Spec, error) {
	if s.Path == "" {
		return s, fmt.Errorf("%w: empty path", ErrInvalidSpec)
	}
	if s.Port < 0 || s.Port > 65535 {
		return s, fmt.Errorf("%w: port %d out of range", ErrInvalidSpec, s.Port)
	}
	if s.ReadyTimeout <= 0 {
		s.ReadyTimeout = DefaultReadyTimeout
	}
	if s.ProbeTimeout <= 0 {
		s.ProbeTimeout = DefaultProbeTimeout
	}
	if s.ProbeBackoff.Initial <= 0 {
		s.ProbeBackoff.Initial = DefaultProbeInitial
	}
	if s.ProbeBackoff.Max < s.ProbeBackoff.Initial {
		s.ProbeBackoff.Max = max(DefaultProbeMax, s.ProbeBackoff.Initial)
	}
	if s.Health == nil {
		s.Health = s.Ready
	}
	if s.TermGrace <= 0 {
		s.TermGrace = DefaultTermGrace
	}
	if s.SecondTermGrace == 0 {
		s.SecondTermGrace = s.TermGrace
	}
	if s.Split == nil {
		s.Split = ScanLines
	}
	if s.MaxLineBytes <= 0 {
		s.MaxLineBytes = DefaultMaxLineBytes
	}
	if s.TailLines <= 0 {
		s.TailLines = DefaultTailLines
	}
	if s.OutputDrain <= 0 {
		s.OutputDrain = DefaultOutputDrain
	}
	if s.LogFileKeep == 0 {
		s.LogFileKeep = -1 // logring's "default"
	} else if s.LogFileKeep < 0 {
		s.LogFileKeep = 0
	}
	r := &s.Restart
	if r.MaxRestarts < 0 {
		r.MaxRestarts = DefaultMaxRestarts
	}
	if r.Window <= 0 {
		r.Window = DefaultRestartWindow
	}
	if r.Backoff.Initial <= 0 {
		r.Backoff.Initial = DefaultRestartInitial
	}
	if r.Backoff.Max < r.Backoff.Initial {
		r.Backoff.Max = max(DefaultRestartMaxDelay, r.Backoff.Initial)
	}
	if r.ResetAfter <= 0 {
		r.ResetAfter = DefaultRestartResetAfter
	}
	return s, nil
}

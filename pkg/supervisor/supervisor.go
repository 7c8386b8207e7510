package supervisor

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/genailab/genailab/pkg/logring"
)

// Config configures a Supervisor for its whole life.
type Config struct {
	// Name identifies the engine in events, logs and the pid file name
	// (letters, digits, '.', '_', '-'). Default "engine".
	Name   string
	Logger *slog.Logger
	// LogLines is the capacity of the output ring (default 2000), shared by
	// all processes this supervisor runs, so a crash's output survives the
	// restart.
	LogLines int
	// EventBacklog is the capacity of the event ring (default 256).
	EventBacklog int
	// PidDir, if set, receives <Name>.pid while a process runs; see
	// ReapStale. The directory must exist.
	PidDir string
}

// Supervisor runs one engine process at a time. Create it with New; all
// methods are safe for concurrent use.
type Supervisor struct {
	cfg    Config
	log    *slog.Logger
	logs   *logring.Ring[Line]
	events *logring.Ring[Event]
	snap   atomic.Pointer[Snapshot]
	ids    atomic.Uint64

	reqs    chan any
	exits   chan exitMsg
	readys  chan uint64
	healths chan healthMsg
	cancel  context.CancelFunc
	done    chan struct{}
}

// New returns a supervisor whose goroutine runs until ctx ends or Close is
// called; either stops the process first (the full SIGTERM/SIGKILL sequence).
func New(ctx context.Context, cfg Config) (*Supervisor, error) {
	if cfg.Name == "" {
		cfg.Name = "engine"
	}
	if !validName(cfg.Name) {
		return nil, fmt.Errorf("supervisor: invalid name %q", cfg.Name)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.LogLines <= 0 {
		cfg.LogLines = 2000
	}
	if cfg.EventBacklog <= 0 {
		cfg.EventBacklog = 256
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &Supervisor{
		cfg:     cfg,
		log:     cfg.Logger.With("engine", cfg.Name),
		logs:    logring.New[Line](cfg.LogLines),
		events:  logring.New[Event](cfg.EventBacklog),
		reqs:    make(chan any),
		exits:   make(chan exitMsg, 1),
		readys:  make(chan uint64, 1),
		healths: make(chan healthMsg, 1),
		cancel:  cancel,
		done:    make(chan struct{}),
	}
	s.snap.Store(&Snapshot{Name: cfg.Name})
	l := &loop{s: s, snap: Snapshot{Name: cfg.Name}}
	go l.run(ctx)
	return s, nil
}

// Name returns the configured name.
func (s *Supervisor) Name() string { return s.cfg.Name }

// Snapshot returns the current state without waiting.
func (s *Supervisor) Snapshot() Snapshot { return *s.snap.Load() }

// Events returns a cursor over the events, starting with up to backlog past
// ones. A reader that falls behind the ring's capacity is told how many it
// missed (Entry.Missed); it never slows the supervisor.
func (s *Supervisor) Events(backlog int) *logring.Cursor[Event] { return s.events.Subscribe(backlog) }

// Logs returns a cursor over the output lines, starting with up to backlog
// past ones, with the same guarantees as Events.
func (s *Supervisor) Logs(backlog int) *logring.Cursor[Line] { return s.logs.Subscribe(backlog) }

// LogTail returns up to n of the latest output lines, oldest first.
func (s *Supervisor) LogTail(n int) []Line { return s.logs.Tail(n) }

// Done is closed once the supervisor has stopped its process and ended.
func (s *Supervisor) Done() <-chan struct{} { return s.done }

// Start launches the process and waits until it is ready. It fails with
// ErrAlreadyRunning while a process is starting, running or stopping, with
// ErrPortInUse, with a *StartError (ErrExitedDuringStart, ErrStartTimeout,
// ErrStartAborted), or with the launch error. If ctx ends first, the process
// is killed and the error matches both ErrStartAborted and ctx.Err().
func (s *Supervisor) Start(ctx context.Context, spec Spec) error {
	sp, err := spec.withDefaults()
	if err != nil {
		return fmt.Errorf("start %s: %w", s.cfg.Name, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	w := &waiter{id: s.ids.Add(1), reply: make(chan error, 1)}
	if err := s.send(ctx, startReq{spec: &sp, w: w}); err != nil {
		return err
	}
	return s.await(ctx, w)
}

// Restart stops the process (if any) and starts it again with the last Spec,
// waiting until it is ready. It fails with ErrNotRunning if Start was never
// called. Context handling is as for Start.
func (s *Supervisor) Restart(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	w := &waiter{id: s.ids.Add(1), reply: make(chan error, 1)}
	if err := s.send(ctx, restartReq{w: w}); err != nil {
		return err
	}
	return s.await(ctx, w)
}

// Stop stops the process and waits until it is gone. Stopping a stopped
// supervisor is a no-op; stopping a crashed one cancels a pending restart.
// If ctx ends first, Stop returns ctx.Err() and the stop carries on.
func (s *Supervisor) Stop(ctx context.Context) error {
	reply := make(chan error, 1)
	if err := s.send(ctx, stopReq{reply: reply}); err != nil {
		if err == ErrClosed {
			return nil // closed means stopped
		}
		return err
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops the process and ends the supervisor. It waits until both are
// done or ctx ends (the stop then carries on).
func (s *Supervisor) Close(ctx context.Context) error {
	s.cancel()
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Supervisor) send(ctx context.Context, req any) error {
	select {
	case s.reqs <- req:
		return nil
	case <-s.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// await waits for a start or restart to finish; if ctx ends first, it asks
// the loop to abort and waits for the (quick) kill.
func (s *Supervisor) await(ctx context.Context, w *waiter) error {
	select {
	case err := <-w.reply:
		return err
	case <-ctx.Done():
		if s.send(context.Background(), abortReq{id: w.id, cause: ctx.Err()}) != nil {
			return ctx.Err()
		}
		select {
		case err := <-w.reply:
			return err
		case <-s.done:
			return ctx.Err()
		}
	}
}

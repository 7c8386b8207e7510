package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/genailab/genailab/pkg/imagereq"
	"github.com/genailab/genailab/pkg/logring"
	"github.com/genailab/genailab/pkg/modelfile"
	"github.com/genailab/genailab/pkg/supervisor"
	"github.com/genailab/genailab/services/diffusion/internal/enginerr"
	"github.com/genailab/genailab/services/diffusion/internal/sdprogress"
)

// Options configure an Engine.
type Options struct {
	Logger   *slog.Logger
	Binaries Binaries
	// Hints name the configuration knobs in errors; zero means DefaultHints.
	Hints Hints
	// TempDir holds the per-image run directories of CLI mode; "" means os.TempDir().
	TempDir string
	// StallTimeout: a generation that prints nothing for this long is killed and fails with
	// enginerr.ErrStalled (DeadlineExceeded). Default 5 minutes: a large VAE decode on a CPU
	// prints nothing for minutes.
	StallTimeout time.Duration
	// ReadyTimeout bounds sd-server's start; default 2 minutes.
	ReadyTimeout time.Duration
	// KillGrace is the time between SIGTERM and SIGKILL; default 2 s.
	KillGrace time.Duration
	// Env is added to the engine processes' environment.
	Env []string
	// ExtraArgs are appended to every engine command line (the operator's own sd.cpp flags,
	// e.g. "--diffusion-conv-direct"); never taken from API callers.
	ExtraArgs []string
	// LogLines is the capacity of the log ring; default 2000.
	LogLines int
	// ProgressInterval is how often the percent is re-estimated while nothing is printed;
	// default 250 ms.
	ProgressInterval time.Duration
	// PollInterval is how often a server-mode job is polled; default 250 ms. The real sd-server
	// closes a keep-alive connection on its 100th request, so a fast poll reconnects every few
	// seconds; the job is fetched at once when the output says the image is done.
	PollInterval time.Duration
	// HTTPClient talks to sd-server; default a client without a global timeout.
	HTTPClient *http.Client
}

func (o *Options) defaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Hints == (Hints{}) {
		o.Hints = DefaultHints
	}
	if o.StallTimeout <= 0 {
		o.StallTimeout = 5 * time.Minute
	}
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = 2 * time.Minute
	}
	if o.KillGrace <= 0 {
		o.KillGrace = 2 * time.Second
	}
	if o.LogLines <= 0 {
		o.LogLines = 2000
	}
	if o.ProgressInterval <= 0 {
		o.ProgressInterval = 250 * time.Millisecond
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 250 * time.Millisecond
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 4}}
	}
}

// backend is one engine mode.
type backend interface {
	// start prepares the engine (server mode: launches sd-server and waits until it is ready).
	start(ctx context.Context) error
	// generate makes one image, feeding g's progress.
	generate(g *generation) (Result, error)
	// cancel asks the running generation to stop; g.ctx is already cancelled.
	stop(ctx context.Context) error
	// check refuses parameters this mode cannot run (imagereq.ErrInvalid, or
	// enginerr.ErrUnsupported for a feature it lacks), before anything starts.
	check(p imagereq.Params) error
	// capabilities are the features this mode (and binary) can run.
	capabilities() Capabilities
	// restarting reports whether a crashed engine process is being restarted automatically
	// (sd-server under its supervisor, until it gives up).
	restarting() bool
	// queues reports whether a generation waits in the engine's own queue before it starts
	// (sd-server's job queue): its progress then starts at sdprogress.StageQueued.
	queues() bool
	// pid and port of the persistent process, 0 when none.
	pid() int
	port() int
}

// Engine runs one diffusion engine. Its methods are safe for concurrent use.
type Engine struct {
	opts   Options
	log    *slog.Logger
	logs   *logring.Ring[LogLine]
	events *logring.Ring[Event]

	mu        sync.Mutex
	status    supervisor.State
	health    supervisor.Health
	changed   chan struct{} // closed and replaced on every status change
	cfg       Config
	bin       Binary
	startedAt time.Time
	lastErr   string
	reason    string // why it cannot run
	be        backend
	gen       *generation
	est       sdprogress.Estimates
	flags     flagCache
}

// New returns a stopped engine.
func New(opts Options) *Engine {
	opts.defaults()
	e := &Engine{
		opts:    opts,
		log:     opts.Logger,
		logs:    logring.New[LogLine](opts.LogLines),
		events:  logring.New[Event](256),
		status:  supervisor.StateStopped,
		health:  supervisor.HealthUnknown,
		changed: make(chan struct{}),
		est:     sdprogress.DefaultEstimates(),
	}
	// Tell early when no engine binary can be found (GetInfo's unavailable_reason).
	if _, err := opts.Binaries.Resolve(ModeCLI, opts.Hints); err != nil {
		e.reason = err.Error()
	}
	return e
}

// Logs is the ring of engine output lines.
func (e *Engine) Logs() *logring.Ring[LogLine] { return e.logs }

// Events is the ring of lifecycle events.
func (e *Engine) Events() *logring.Ring[Event] { return e.events }

// Close stops the engine and closes the rings.
func (e *Engine) Close(ctx context.Context) error {
	_, err := e.Stop(ctx)
	e.logs.Close()
	e.events.Close()
	return err
}

// Info returns a snapshot.
func (e *Engine) Info() Info {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.infoLocked()
}

func (e *Engine) infoLocked() Info {
	in := Info{
		Status:      e.status,
		Health:      e.health,
		Busy:        e.gen != nil,
		ModelID:     e.cfg.ModelID,
		Config:      e.cfg,
		Binary:      e.bin.Path,
		Demo:        e.bin.Demo,
		Unavailable: e.reason,
		LastError:   e.lastErr,
		StartedAt:   e.startedAt,
	}
	if e.be != nil {
		in.PID, in.Port = e.be.pid(), e.be.port()
		in.Capabilities = e.be.capabilities()
	}
	if e.gen != nil {
		p := e.gen.snapshot()
		in.Current = &p
		if pid := e.gen.getPID(); pid != 0 {
			in.PID = pid
		}
	}
	return in
}

// setStatus changes the status and records an event; called with e.mu held.
func (e *Engine) setStatusLocked(s supervisor.State, h supervisor.Health) {
	e.status, e.health = s, h
	close(e.changed)
	e.changed = make(chan struct{})
}

func (e *Engine) eventLocked(t supervisor.EventKind, msg string, exit *supervisor.ExitStatus) {
	e.events.Append(Event{Type: t, Time: time.Now(), Info: e.infoLocked(), Message: msg, Exit: exit})
}

// Start prepares the engine with cfg. It fails with enginerr.ErrAlreadyRunning when it is not
// stopped or crashed, enginerr.ErrNoEngine when no binary is found, sdargs.ErrNoModel or
// enginerr.ErrModelMissing for a bad model, and the backend's error when sd-server does not
// come up.
func (e *Engine) Start(ctx context.Context, cfg Config) (Info, error) {
	if cfg.Mode == 0 {
		cfg.Mode = ModeCLI
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = e.opts.ReadyTimeout
	}
	// Use the current form of the flags the binary offers (--backend over the deprecated
	// --clip-on-cpu); read before taking the lock: it runs the binary once (then cached).
	if b, err := e.opts.Binaries.Resolve(cfg.Mode, e.opts.Hints); err == nil {
		offered, ferr := e.flags.offered(ctx, b, e.opts.Env)
		if ferr != nil {
			e.log.Warn("cannot read the engine's flags; using the older flag forms", "err", ferr)
		}
		cfg.Memory.Offered = offered
	}
	e.mu.Lock()
	if e.status != supervisor.StateStopped && e.status != supervisor.StateCrashed {
		defer e.mu.Unlock()
		return e.infoLocked(), fmt.Errorf("start %s engine: %w (%s)", cfg.Mode, enginerr.ErrAlreadyRunning, e.status)
	}
	// A failed start reports its own cause, never the previous model's error.
	refuse := func(err error) (Info, error) {
		err = fmt.Errorf("start %s engine: %w", cfg.Mode, err)
		e.lastErr = err.Error()
		defer e.mu.Unlock()
		return e.infoLocked(), err
	}
	if err := cfg.Model.Validate(); err != nil {
		return refuse(err)
	}
	for _, f := range cfg.Model.Files() {
		if st, err := os.Stat(f); err != nil || !st.Mode().IsRegular() {
			return refuse(fmt.Errorf("%w: %s", enginerr.ErrModelMissing, f))
		}
		if err := modelfile.Check(f); err != nil {
			return refuse(err) // truncated or corrupt: sd.cpp would abort mid-load
		}
	}
	bin, err := e.opts.Binaries.Resolve(cfg.Mode, e.opts.Hints)
	if err != nil {
		e.reason = err.Error()
		return refuse(err)
	}
	e.reason = ""
	e.cfg, e.bin, e.lastErr = cfg, bin, ""
	e.est = sdprogress.DefaultEstimates()
	var be backend
	switch cfg.Mode {
	case ModeCLI:
		be = &cliBackend{e: e, bin: bin, cfg: cfg}
	case ModeServer:
		be = newServerBackend(e, bin, cfg)
	default:
		return refuse(fmt.Errorf("%w: unknown mode %d", imagereq.ErrInvalid, cfg.Mode))
	}
	e.be = be
	e.setStatusLocked(supervisor.StateStarting, supervisor.HealthUnknown)
	e.mu.Unlock()

	e.log.Info("starting diffusion engine", "mode", cfg.Mode, "binary", bin.Path, "demo", bin.Demo, "model", cfg.ModelID)
	if err := be.start(ctx); err != nil {
		_ = be.stop(context.WithoutCancel(ctx))
		e.mu.Lock()
		defer e.mu.Unlock()
		e.be = nil
		e.lastErr = err.Error()
		e.setStatusLocked(supervisor.StateStopped, supervisor.HealthError)
		e.eventLocked(supervisor.EventStopped, "start failed: "+err.Error(), nil)
		return e.infoLocked(), fmt.Errorf("start %s engine: %w", cfg.Mode, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.startedAt = time.Now()
	e.setStatusLocked(supervisor.StateRunning, supervisor.HealthOK)
	e.eventLocked(supervisor.EventReady, fmt.Sprintf("%s engine started (%s)", cfg.Mode, bin.Path), nil)
	return e.infoLocked(), nil
}

// Stop cancels a generation in progress, waits for it to end, and stops the engine. Stopping a
// stopped engine succeeds.
func (e *Engine) Stop(ctx context.Context) (Info, error) {
	e.mu.Lock()
	if e.status == supervisor.StateStopped || e.status == supervisor.StateCrashed && e.be == nil {
		defer e.mu.Unlock()
		return e.infoLocked(), nil
	}
	be, g := e.be, e.gen
	e.setStatusLocked(supervisor.StateStopping, e.health)
	e.mu.Unlock()

	if g != nil {
		g.cancel()
		select {
		case <-g.done:
		case <-ctx.Done():
			return e.Info(), fmt.Errorf("stop: wait for the generation to end: %w", ctx.Err())
		}
	}
	var err error
	if be != nil {
		err = be.stop(ctx)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.be = nil
	e.startedAt = time.Time{}
	e.setStatusLocked(supervisor.StateStopped, supervisor.HealthUnknown)
	e.eventLocked(supervisor.EventStopped, "stopped", nil)
	if err != nil {
		return e.infoLocked(), fmt.Errorf("stop: %w", err)
	}
	return e.infoLocked(), nil
}

// Generate makes one image with p (already validated; see package imagereq), calling sink with
// progress updates. It fails with enginerr.ErrNotRunning when stopped, enginerr.ErrBusy when
// another generation is in progress, ctx's error when cancelled (also by CancelGeneration or
// Stop: context.Canceled), and the backend's errors.
func (e *Engine) Generate(ctx context.Context, p imagereq.Params, sink ProgressFunc) (Result, error) {
	e.mu.Lock()
	if e.be != nil {
		// What the mode cannot run is refused at once, not after waiting for a (re)start.
		if err := e.be.check(p); err != nil {
			e.mu.Unlock()
			return Result{}, err
		}
	}
	for e.be != nil && (e.status == supervisor.StateStarting || e.status == supervisor.StateCrashed && e.be.restarting()) {
		// server mode restarting after a cancel or a crash: wait for it
		ch := e.changed
		e.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return Result{}, fmt.Errorf("wait for the engine to start: %w", ctx.Err())
		}
		e.mu.Lock()
	}
	if e.status != supervisor.StateRunning || e.be == nil {
		st := e.status
		e.mu.Unlock()
		return Result{}, fmt.Errorf("%w (%s): start it first", enginerr.ErrNotRunning, st)
	}
	if err := e.be.check(p); err != nil { // again: the engine may have restarted in another mode
		e.mu.Unlock()
		return Result{}, err // bad input is not an engine error: lastError stays as it was
	}
	if e.gen != nil {
		e.mu.Unlock()
		return Result{}, enginerr.ErrBusy
	}
	if p.Edit != nil {
		// The one image form both front ends read (see package uploadpng).
		edit, err := rgbEdit(*p.Edit)
		if err != nil {
			e.mu.Unlock()
			return Result{}, err
		}
		p.Edit = edit
	}
	now := time.Now()
	g := newGeneration(ctx, p, e.est, sink, now)
	e.gen = g
	be, demo := e.be, e.bin.Demo
	e.eventLocked(EventGenerationStarted, fmt.Sprintf("%dx%d, %d steps, seed %d", p.Width, p.Height, p.Steps, p.Seed), nil)
	e.mu.Unlock()

	g.mu.Lock()
	g.queued = be.queues()
	g.publish(now, true)
	g.mu.Unlock()
	stopTicker := e.tickProgress(g)
	res, err := be.generate(g)
	stopTicker()
	if err == nil {
		g.finish(time.Now())
		res.TimeTaken = time.Since(g.start)
		res.Demo = demo
		res.Seed = p.Seed
	} else if g.ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		// Cancelled (CancelGeneration, Stop, or the caller went away): report a cancel, not
		// the kill's aftermath ("sd-cli: context canceled", an exit by SIGTERM).
		e.log.Debug("generation cancelled", "detail", err)
		err = enginerr.ErrCancelled
	}
	g.cancel()

	e.mu.Lock()
	e.gen = nil
	msg := fmt.Sprintf("done in %s", res.TimeTaken.Round(time.Millisecond))
	if errors.Is(err, context.Canceled) {
		msg = "cancelled" // a cancel is not an engine error: lastError stays as it was
	} else if err != nil {
		e.lastErr = err.Error()
		msg = "failed: " + err.Error()
	} else {
		e.est = e.est.Update(g.measurement())
	}
	e.eventLocked(EventGenerationFinished, msg, nil)
	e.mu.Unlock()
	close(g.done)
	if errors.Is(err, context.Canceled) {
		e.log.Info("generation cancelled")
		return Result{}, err
	}
	if err != nil {
		e.log.Warn("generation failed", "err", err)
		return Result{}, err
	}
	e.log.Info("generation done", "seed", res.Seed, "width", res.Width, "height", res.Height, "time", res.TimeTaken)
	return res, nil
}

// tickProgress re-estimates the percent periodically until the returned stop is called.
func (e *Engine) tickProgress(g *generation) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(e.opts.ProgressInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				g.tick(now)
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// CancelGeneration cancels the generation in progress and waits until it has ended (process
// killed, temporary files removed). It reports whether there was one.
func (e *Engine) CancelGeneration(ctx context.Context) (bool, error) {
	e.mu.Lock()
	g := e.gen
	e.mu.Unlock()
	if g == nil {
		return false, nil
	}
	g.cancel()
	select {
	case <-g.done:
		return true, nil
	case <-ctx.Done():
		return true, fmt.Errorf("wait for the cancelled generation to end: %w", ctx.Err())
	}
}

// output handles one line or bar of engine output: it goes to the log ring and, when a
// generation is given, to its progress.
func (e *Engine) output(s supervisor.Stream, ev sdprogress.Event, at time.Time, g *generation) {
	if g != nil && s == supervisor.Stdout {
		g.observe(ev, at)
	}
	switch ev.Kind {
	case sdprogress.KindLog, sdprogress.KindText:
	default:
		if ev.Current != ev.Total {
			return // keep only the last update of each bar in the log
		}
	}
	line := LogLine{Time: at, Level: ev.Level, Message: ev.Message, Raw: ev.Text, Stream: s}
	if ev.Kind != sdprogress.KindLog {
		line.Message = strings.TrimSpace(ev.Text)
	}
	if s == supervisor.Stderr && line.Level == sdprogress.LevelUnknown {
		line.Level = sdprogress.LevelError
	}
	e.logs.Append(line)
}

// serviceLog records a line written by the service itself.
func (e *Engine) serviceLog(level sdprogress.Level, msg string) {
	e.logs.Append(LogLine{Time: time.Now(), Level: level, Message: msg, Raw: msg, Stream: supervisor.Service})
}

// backendChanged applies a state change reported by be (server mode), unless be is no longer
// the engine's backend or the engine is stopping. An empty event kind records no event.
func (e *Engine) backendChanged(be backend, s supervisor.State, h supervisor.Health, t supervisor.EventKind, msg string, exit *supervisor.ExitStatus) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.be != be || e.status == supervisor.StateStopping || e.status == supervisor.StateStopped {
		return
	}
	if exit != nil && s == supervisor.StateCrashed {
		e.lastErr = msg
	}
	e.setStatusLocked(s, h)
	if t != "" {
		e.eventLocked(t, msg, exit)
	}
}

// backendHealth records a health probe result.
func (e *Engine) backendHealth(be backend, h supervisor.Health) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.be == be && e.status == supervisor.StateRunning {
		e.health = h
	}
}

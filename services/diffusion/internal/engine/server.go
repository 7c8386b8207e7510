package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/genailab/genailab/pkg/imagereq"
	"github.com/genailab/genailab/pkg/logring"
	"github.com/genailab/genailab/pkg/ports"
	"github.com/genailab/genailab/pkg/supervisor"
	"github.com/genailab/genailab/services/diffusion/internal/enginerr"
	"github.com/genailab/genailab/services/diffusion/internal/pngcheck"
	"github.com/genailab/genailab/services/diffusion/internal/sdcli"
	"github.com/genailab/genailab/services/diffusion/internal/sdprogress"
	"github.com/genailab/genailab/services/diffusion/internal/sdserver"
)

const serverHost = "127.0.0.1"

// serverBackend runs one persistent sd-server under pkg/supervisor.
type serverBackend struct {
	e   *Engine
	bin Binary
	cfg Config

	// sup and portN are set by start and read by Info (pid, port) while it runs.
	sup     atomic.Pointer[supervisor.Supervisor]
	client  *sdserver.Client
	portN   atomic.Int32
	dir     string // private working directory (sd-server lists LoRAs from ".")
	stopped chan struct{}

	activity atomic.Int64 // unix nanos of the latest output
	gaveUp   atomic.Bool  // the supervisor stopped restarting sd-server
	// kick is signalled when the output says the image is done (sampling and decoding
	// completed), so that the job is fetched at once instead of at the next poll.
	kick chan struct{}

	mu      sync.Mutex // guards the parsers, cur and crash
	parsers [3]sdprogress.Parser
	cur     *generation
	crash   chan *supervisor.ExitStatus // receives the exit of a crash during a generation
	errTail []string
}

func newServerBackend(e *Engine, bin Binary, cfg Config) *serverBackend {
	return &serverBackend{e: e, bin: bin, cfg: cfg, stopped: make(chan struct{}), kick: make(chan struct{}, 1)}
}

func (b *serverBackend) restarting() bool { return !b.gaveUp.Load() }

func (b *serverBackend) check(p imagereq.Params) error {
	if p.Steps > sdserver.MaxSteps {
		return fmt.Errorf("%w: sd-server runs at most %d steps, got %d (use CLI mode for more)",
			imagereq.ErrInvalid, sdserver.MaxSteps, p.Steps)
	}
	return b.capabilities().check(ModeServer, p)
}

// capabilities: sd-server's job API runs batches (batch_count) and edits (init_image,
// mask_image, strength) but writes no previews. The demo stand-in ignores init images.
func (b *serverBackend) capabilities() Capabilities {
	if b.bin.Demo {
		return demoCapabilities
	}
	return Capabilities{MaxBatch: imagereq.MaxBatch, Edits: true, Masks: true,
		Limitations: "server mode (sd-server's job API) writes no previews; use CLI mode for them"}
}

func (b *serverBackend) pid() int {
	sup := b.sup.Load()
	if sup == nil {
		return 0
	}
	return sup.Snapshot().Pid
}

func (b *serverBackend) port() int { return int(b.portN.Load()) }

func (b *serverBackend) queues() bool { return true }

func (b *serverBackend) start(ctx context.Context) error {
	port := b.cfg.Port
	if port == 0 {
		p, err := ports.Free(serverHost)
		if err != nil {
			return err
		}
		port = p
	} else if err := ports.CheckFree(serverHost, port); err != nil {
		// sd-server sets SO_REUSEPORT and would start happily on a busy port.
		return fmt.Errorf("sd-server port: %w", err)
	}
	b.portN.Store(int32(port))
	b.client = &sdserver.Client{Base: "http://" + net.JoinHostPort(serverHost, strconv.Itoa(port)), HTTP: b.e.opts.HTTPClient}

	dir, err := os.MkdirTemp(b.e.opts.TempDir, "sd-server-")
	if err != nil {
		return fmt.Errorf("create sd-server directory: %w", err)
	}
	b.dir = dir
	sup, err := supervisor.New(context.Background(), supervisor.Config{Name: "sd-server", Logger: b.e.log, LogLines: 200})
	if err != nil {
		return err
	}
	b.sup.Store(sup)
	go b.watch(sup.Events(0))

	spec := supervisor.Spec{
		Path:       b.bin.Path,
		Args:       append(sdserver.Args(b.cfg.Model, b.cfg.Memory, b.cfg.Threads, serverHost, port), b.e.opts.ExtraArgs...),
		Dir:        dir,
		Env:        append(append([]string(nil), b.e.opts.Env...), b.bin.Env...),
		InheritEnv: true,
		KeepEnv:    sdcli.EngineEnv, // the service's tokens and settings stay with it
		Host:       serverHost,
		Port:       port,
		// No /health: connections are refused until `listening on` is printed, then GET /
		// answers.
		Ready: func(ctx context.Context) (bool, error) {
			if err := b.client.Ping(ctx); err != nil {
				return false, err
			}
			return true, nil
		},
		ReadyOnLine:    func(l supervisor.Line) bool { return strings.Contains(l.Text, "listening on") },
		ReadyTimeout:   b.cfg.ReadyTimeout,
		HealthInterval: 5 * time.Second,
		TermGrace:      b.e.opts.KillGrace,
		Restart:        supervisor.RestartPolicy{Enabled: true},
		Split:          supervisor.ScanTerminal,
		OnChunk:        b.onChunk,
	}
	if err := sup.Start(ctx, spec); err != nil {
		// sd-server prints why it refused to start (an unknown argument, a model it cannot
		// load) on stderr and then its whole usage on stdout: the cause is in stderr.
		b.mu.Lock()
		lines := append([]string(nil), b.errTail...)
		b.mu.Unlock()
		if len(lines) > 0 {
			return fmt.Errorf("start sd-server: %s: %w", strings.Join(lines, " | "), err)
		}
		return fmt.Errorf("start sd-server: %w", err)
	}
	return nil
}

func (b *serverBackend) stop(ctx context.Context) error {
	sup := b.sup.Load()
	if sup == nil {
		return nil
	}
	err := sup.Close(ctx)
	if b.dir != "" {
		os.RemoveAll(b.dir)
	}
	return err
}

// onChunk receives sd-server's output as it is read.
func (b *serverBackend) onChunk(s supervisor.Stream, chunk []byte) {
	now := time.Now()
	b.activity.Store(now.UnixNano())
	st := supervisor.Stdout
	if s == supervisor.Stderr {
		st = supervisor.Stderr
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	g := b.cur
	b.parsers[st].Feed(chunk, func(ev sdprogress.Event) {
		if st == supervisor.Stderr && strings.TrimSpace(ev.Text) != "" {
			b.errTail = append(b.errTail, strings.TrimSpace(ev.Text))
			if len(b.errTail) > 8 {
				b.errTail = b.errTail[1:]
			}
		}
		b.e.output(st, ev, now, g)
		if g != nil && ev.Kind == sdprogress.KindLog && imageDone(ev.Message) {
			select {
			case b.kick <- struct{}{}:
			default:
			}
		}
	})
}

// watch mirrors the supervisor's crash-related events into the engine; starts and stops are
// driven by the engine itself.
func (b *serverBackend) watch(c *logring.Cursor[supervisor.Event]) {
	for {
		ent, err := c.Next(context.Background())
		if err != nil {
			return // ring closed: the supervisor ended
		}
		ev := ent.Value
		switch ev.Kind {
		case supervisor.EventCrashed:
			b.mu.Lock()
			if b.crash != nil {
				select {
				case b.crash <- ev.Exit:
				default:
				}
			}
			b.mu.Unlock()
			msg := "sd-server crashed"
			if ev.Exit != nil {
				msg += " (" + ev.Exit.String() + ")"
			}
			b.e.backendChanged(b, supervisor.StateCrashed, supervisor.HealthError, supervisor.EventCrashed, msg, ev.Exit)
		case supervisor.EventRestarting:
			b.e.backendChanged(b, supervisor.StateStarting, supervisor.HealthUnknown, "", "", nil)
		case supervisor.EventRestarted:
			b.gaveUp.Store(false)
			b.e.backendChanged(b, supervisor.StateRunning, supervisor.HealthOK, supervisor.EventRestarted, "sd-server restarted after a crash", nil)
		case supervisor.EventGaveUp:
			b.gaveUp.Store(true)
			b.e.backendChanged(b, supervisor.StateCrashed, supervisor.HealthError, supervisor.EventGaveUp, "sd-server keeps crashing; gave up restarting", nil)
		case supervisor.EventHealthChanged:
			b.e.backendHealth(b, ev.Health)
		}
	}
}

// generate submits one job, follows it until it completes, and returns its image.
func (b *serverBackend) generate(g *generation) (Result, error) {
	p := g.params
	crash := make(chan *supervisor.ExitStatus, 1)
	b.mu.Lock()
	b.cur, b.crash, b.errTail = g, crash, nil
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.cur, b.crash = nil, nil
		b.mu.Unlock()
	}()

	ctx := g.ctx
	select {
	case <-b.kick: // a stale signal of the previous job
	default:
	}
	id, err := b.client.Submit(ctx, p)
	if err != nil {
		if errors.Is(err, sdserver.ErrQueueFull) {
			return Result{}, fmt.Errorf("%w: %v", enginerr.ErrBusy, err)
		}
		if ctx.Err() != nil {
			return Result{}, fmt.Errorf("sd-server: %w", ctx.Err())
		}
		return Result{}, err
	}
	b.activity.Store(time.Now().UnixNano())
	stall := b.e.opts.StallTimeout
	t := time.NewTicker(b.e.opts.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return Result{}, b.cancel(id, ctx.Err())
		case exit := <-crash:
			return Result{}, b.crashError(exit)
		case <-t.C:
		case <-b.kick:
		}
		pollCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		job, err := b.client.Job(pollCtx, id)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return Result{}, b.cancel(id, ctx.Err())
			}
			select {
			case exit := <-crash:
				return Result{}, b.crashError(exit)
			case <-time.After(b.e.opts.KillGrace):
				// give the supervisor time to notice a crash before reporting the poll error
				select {
				case exit := <-crash:
					return Result{}, b.crashError(exit)
				default:
				}
			}
			return Result{}, err
		}
		switch job.Status {
		case sdserver.StatusQueued:
			continue
		case sdserver.StatusGenerating:
			g.setQueued(false, time.Now())
			if quiet := time.Since(time.Unix(0, b.activity.Load())); stall > 0 && quiet > stall {
				b.restart("stalled job " + id)
				return Result{}, fmt.Errorf("sd-server: %w: no output for %s", enginerr.ErrStalled, quiet.Round(time.Millisecond))
			}
		case sdserver.StatusCompleted:
			seeds := p.Seeds()
			pngs, err := job.Images(len(seeds))
			if err != nil {
				return Result{}, fmt.Errorf("sd-server job %s: %w: %v", id, enginerr.ErrNoOutput, err)
			}
			res := Result{Width: p.Width, Height: p.Height}
			for i, png := range pngs {
				if err := pngcheck.Check(png, p.Width, p.Height); err != nil {
					return Result{}, fmt.Errorf("sd-server image %d: %w", i, err)
				}
				if i == 0 {
					res.PNG = png
				} else {
					res.Batch = append(res.Batch, BatchImage{PNG: png, Seed: seeds[i]})
				}
			}
			return res, nil
		case sdserver.StatusFailed, sdserver.StatusCancelled:
			return Result{}, b.jobError(job)
		default:
			return Result{}, fmt.Errorf("sd-server job %s: unexpected status %q", id, job.Status)
		}
	}
}

// cancel cancels job id after the generation's context ended with cause. A queued job is
// cancelled through the API; a generating one cannot be (409), so sd-server is restarted.
func (b *serverBackend) cancel(id string, cause error) error {
	ctx, done := context.WithTimeout(context.Background(), 5*time.Second)
	defer done()
	_, err := b.client.Cancel(ctx, id)
	switch {
	case err == nil, errors.Is(err, sdserver.ErrJobNotFound):
	case errors.Is(err, sdserver.ErrGenerating):
		b.restart("cancel of generating job " + id)
	default:
		b.e.log.Warn("cancel sd-server job failed; restarting sd-server", "job", id, "err", err)
		b.restart("failed cancel of job " + id)
	}
	return fmt.Errorf("sd-server: %w", cause)
}

// restart kills sd-server and starts it again, with the engine reporting starting meanwhile.
// It returns once the old process is gone; the new one comes up in the background (a
// Generate waits for it).
func (b *serverBackend) restart(why string) {
	b.e.serviceLog(sdprogress.LevelWarn, "restarting sd-server: "+why)
	b.e.backendChanged(b, supervisor.StateStarting, supervisor.HealthUnknown, "", "", nil)
	if err := b.sup.Load().Stop(context.Background()); err != nil {
		b.e.log.Warn("stop sd-server for restart", "err", err)
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), b.cfg.ReadyTimeout+5*time.Second)
		defer cancel()
		if err := b.sup.Load().Restart(ctx); err != nil {
			b.e.backendChanged(b, supervisor.StateCrashed, supervisor.HealthError, supervisor.EventCrashed, "sd-server restart failed: "+err.Error(), nil)
			return
		}
		b.e.backendChanged(b, supervisor.StateRunning, supervisor.HealthOK, supervisor.EventReady, "sd-server restarted ("+why+")", nil)
	}()
}

// jobError explains a failed job with sd-server's reason and the ERROR lines it printed.
func (b *serverBackend) jobError(job *sdserver.Job) error {
	time.Sleep(20 * time.Millisecond) // let the stderr lines printed before the failure arrive
	b.mu.Lock()
	lines := append([]string(nil), b.errTail...)
	b.mu.Unlock()
	msg := job.Status
	if job.Error != nil {
		msg = job.Error.Code + ": " + job.Error.Message
	}
	if len(lines) > 0 {
		msg += " | " + strings.Join(lines, " | ")
	}
	if enginerr.MentionsOutOfMemory(lines) {
		return fmt.Errorf("sd-server job %s: %w: %w: %s", job.ID, enginerr.ErrEngineFailed, enginerr.ErrOutOfMemory, msg)
	}
	return fmt.Errorf("sd-server job %s: %w: %s", job.ID, enginerr.ErrEngineFailed, msg)
}

func (b *serverBackend) crashError(exit *supervisor.ExitStatus) error {
	b.mu.Lock()
	lines := append([]string(nil), b.errTail...)
	b.mu.Unlock()
	e := &enginerr.ExitError{Program: "sd-server", Code: -1, Lines: lines}
	if exit != nil {
		e.Code, e.Signal = exit.Code, exit.SignalName()
	}
	return e
}

// imageDone reports whether an engine log message says the image has been made, so its job can
// be fetched now: sd.cpp logs "generate_image completed in …" once sampling and decoding are done.
func imageDone(msg string) bool {
	return strings.HasPrefix(msg, "generate_image completed")
}

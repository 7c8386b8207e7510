package sdcli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/genailab/genailab/pkg/imagereq"
	"github.com/genailab/genailab/pkg/supervisor"
	"github.com/genailab/genailab/services/diffusion/internal/enginerr"
	"github.com/genailab/genailab/services/diffusion/internal/pngcheck"
	"github.com/genailab/genailab/services/diffusion/internal/sdargs"
	"github.com/genailab/genailab/services/diffusion/internal/sdprogress"
)

// EngineEnv is what an engine (sd-cli, sd-server, their --help) inherits of
// the service's environment: supervisor.EngineEnv (PATH, HOME, locale, GPU
// selection; never a token or a GENAILAB_* setting), and the SDSTANDIN_*
// knobs of the demo stand-ins, which the real engines ignore.
func EngineEnv(key string) bool {
	return supervisor.EngineEnv(key) || strings.HasPrefix(key, "SDSTANDIN_")
}

// Stream names the output a line came from.
type Stream uint8

const (
	Stdout Stream = iota + 1
	Stderr
)

// Job is one sd-cli run.
type Job struct {
	Binary  string
	Model   sdargs.Model
	Memory  sdargs.Memory
	Threads int
	Params  imagereq.Params
	// TempDir is where the private run directory is made; "" means os.TempDir().
	TempDir string
	// StallTimeout kills the run when the process prints nothing for that long; 0 disables it.
	StallTimeout time.Duration
	// KillGrace is the time between SIGTERM and SIGKILL; 0 means 2 s.
	KillGrace time.Duration
	// Env is added to what the engine inherits of the service's environment (EngineEnv).
	Env []string
	// ExtraArgs are appended to the command line before -o.
	ExtraArgs []string

	// OnStart is called with the process id once it runs.
	OnStart func(pid int)
	// OnEvent receives every line and bar of output with the time its bytes were read. Calls
	// are serialised and must not block for long: the process's output waits meanwhile.
	OnEvent func(s Stream, ev sdprogress.Event, at time.Time)
}

// Result is a finished image.
type Result struct {
	PNG           []byte
	Width, Height int
	// Seed is the seed sd-cli reported using (the requested one).
	Seed int64
}

const (
	stderrLines = 8
	stdoutLines = 4
	waitDelay   = 2 * time.Second
)

// Run generates one image. It returns ctx's error when cancelled, an error matching
// enginerr.ErrStalled (and context.DeadlineExceeded) when the process went quiet for
// StallTimeout, an *enginerr.ExitError for a non-zero exit, enginerr.ErrNoOutput or
// enginerr.ErrBadImage for a missing or wrong image. The process group is gone and the
// temporary directory removed when Run returns.
func Run(ctx context.Context, j Job) (Result, error) {
	prog := filepath.Base(j.Binary)
	if err := j.Model.Validate(); err != nil {
		return Result{}, fmt.Errorf("%s: %w", prog, err)
	}
	dir, err := os.MkdirTemp(j.TempDir, "sd-cli-")
	if err != nil {
		return Result{}, fmt.Errorf("%s: create run directory: %w", prog, err)
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "image.png")
	if strings.ContainsRune(out, '%') {
		// sd-cli expands printf-style specifiers in -o.
		return Result{}, fmt.Errorf("%s: temporary directory %q contains '%%'; configure another one", prog, dir)
	}

	r := &runner{job: j, errTail: tail{n: stderrLines}, outTail: tail{n: stdoutLines}}
	r.touch()
	args := Args(j.Model, j.Memory, j.Threads, j.Params, out)
	if len(j.ExtraArgs) > 0 {
		// before "-o out", which Args puts last
		args = append(append(args[:len(args)-2:len(args)-2], j.ExtraArgs...), args[len(args)-2:]...)
	}
	cmd := exec.Command(j.Binary, args...)
	cmd.Dir = dir // sd-cli reads LoRAs from "." by default: keep that private
	// The service's tokens and settings stay with it (EngineEnv).
	cmd.Env = append(supervisor.FilterEnv(os.Environ(), EngineEnv), j.Env...)
	cmd.Stdout = &streamWriter{r: r, stream: Stdout}
	cmd.Stderr = &streamWriter{r: r, stream: Stderr}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = waitDelay // a grandchild holding the pipes must not block Wait
	if err := cmd.Start(); err != nil {
		return Result{}, fmt.Errorf("start %s: %w", prog, err)
	}
	pid := cmd.Process.Pid
	if j.OnStart != nil {
		j.OnStart(pid)
	}

	exited := make(chan struct{})
	waitErr := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		close(exited)
		waitErr <- err
	}()

	var stallC <-chan time.Time
	var stallTimer *time.Timer
	if j.StallTimeout > 0 {
		stallTimer = time.NewTimer(j.StallTimeout)
		defer stallTimer.Stop()
		stallC = stallTimer.C
	}
	grace := j.KillGrace
	if grace <= 0 {
		grace = 2 * time.Second
	}

	var stopErr error // why we killed it
wait:
	for {
		select {
		case <-exited:
			break wait
		case <-ctx.Done():
			stopErr = fmt.Errorf("%s: %w", prog, ctx.Err())
			killGroup(pid, grace, exited)
			break wait
		case <-stallC:
			quiet := time.Since(r.lastActivity())
			if quiet < j.StallTimeout {
				stallTimer.Reset(j.StallTimeout - quiet)
				continue
			}
			stopErr = fmt.Errorf("%s: %w: no output for %s", prog, enginerr.ErrStalled, quiet.Round(time.Millisecond))
			killGroup(pid, grace, exited)
			break wait
		}
	}
	err = <-waitErr
	sweepGroup(pid)
	r.flush()

	if stopErr != nil {
		return Result{}, stopErr
	}
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return Result{}, r.exitError(prog, ee)
		}
		return Result{}, fmt.Errorf("wait for %s: %w", prog, err)
	}

	data, err := os.ReadFile(out)
	if errors.Is(err, fs.ErrNotExist) {
		return Result{}, fmt.Errorf("%s exited 0 but wrote no image: %w", prog, enginerr.ErrNoOutput)
	}
	if err != nil {
		return Result{}, fmt.Errorf("read %s image: %w", prog, err)
	}
	if err := pngcheck.Check(data, j.Params.Width, j.Params.Height); err != nil {
		return Result{}, fmt.Errorf("%s: %w", prog, err)
	}
	return Result{PNG: data, Width: j.Params.Width, Height: j.Params.Height, Seed: j.Params.Seed}, nil
}

// runner is the state shared by the output goroutines of one run.
type runner struct {
	job      Job
	activity atomic.Int64 // unix nanos of the latest output

	mu      sync.Mutex // serialises OnEvent and guards the tails and parsers
	errTail tail
	outTail tail
	parsers [3]sdprogress.Parser
}

func (r *runner) touch() { r.activity.Store(time.Now().UnixNano()) }

func (r *runner) lastActivity() time.Time { return time.Unix(0, r.activity.Load()) }

func (r *runner) feed(s Stream, b []byte) {
	now := time.Now()
	r.activity.Store(now.UnixNano())
	r.mu.Lock()
	defer r.mu.Unlock()
	r.parsers[s].Feed(b, func(ev sdprogress.Event) { r.handle(s, ev, now) })
}

func (r *runner) flush() {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range []Stream{Stdout, Stderr} {
		r.parsers[s].Flush(func(ev sdprogress.Event) { r.handle(s, ev, now) })
	}
}

func (r *runner) handle(s Stream, ev sdprogress.Event, at time.Time) {
	switch {
	case s == Stderr:
		r.errTail.add(strings.TrimSpace(ev.Text))
	case ev.Kind == sdprogress.KindLog || ev.Kind == sdprogress.KindText:
		r.outTail.add(strings.TrimSpace(ev.Text))
	}
	if r.job.OnEvent != nil {
		r.job.OnEvent(s, ev, at)
	}
}

func (r *runner) exitError(prog string, ee *exec.ExitError) error {
	r.mu.Lock()
	lines := r.errTail.get()
	if len(lines) == 0 {
		lines = r.outTail.get()
	}
	r.mu.Unlock()
	e := &enginerr.ExitError{Program: prog, Code: ee.ExitCode(), Lines: lines}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		e.Code = -1
		e.Signal = signalName(ws.Signal())
	}
	return e
}

type streamWriter struct {
	r      *runner
	stream Stream
}

func (w *streamWriter) Write(b []byte) (int, error) {
	w.r.feed(w.stream, b)
	return len(b), nil
}

package sdcli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
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
	// KillGrace is the time between SIGTERM and SIGKILL of the process group; 0 means 2 s.
	KillGrace time.Duration
	// Env is added to what the engine inherits of the service's environment (EngineEnv).
	Env []string
	// ExtraArgs are appended to the command line before -o.
	ExtraArgs []string

	// OnStart is called with the process id once it runs.
	OnStart func(pid int)
	// OnEvent receives every line and bar of output with the time its bytes were read. Calls
	// are serialised and must not block for long: the process's output waits meanwhile.
	OnEvent func(s supervisor.Stream, ev sdprogress.Event, at time.Time)
	// OnPreview receives the previews (when Params.Preview asks for them), in order, from a
	// goroutine of its own; all calls have returned when Run returns. A slow OnPreview makes
	// previews be skipped, never the engine wait.
	OnPreview func(Preview)
}

// Result is a finished image, or batch of images.
type Result struct {
	// PNG and Seed are image 0; Batch holds images 1..n-1 of a batch.
	PNG           []byte
	Width, Height int
	// Seed is the seed sd-cli reported using (the requested one).
	Seed  int64
	Batch []Image
}

// Image is one further image of a batch.
type Image struct {
	PNG  []byte
	Seed int64
}

const (
	stderrLines = 8
	stdoutLines = 4
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

	files, err := writeUploads(dir, j.Params)
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", prog, err)
	}
	r := &runner{job: j, errTail: tail{n: stderrLines}, outTail: tail{n: stdoutLines}}
	if j.Params.Preview.Enabled() && j.OnPreview != nil {
		r.previews = newPreviewWatcher(files.Preview, j.Params.Preview.Interval, j.OnPreview)
	}
	r.touch()
	args := Args(j.Model, j.Memory, j.Threads, j.Params, out)
	// Before "-o out", which Args puts last.
	if extra := append(FeatureArgs(j.Params, files), j.ExtraArgs...); len(extra) > 0 {
		args = append(append(args[:len(args)-2:len(args)-2], extra...), args[len(args)-2:]...)
	}
	grace := j.KillGrace
	if grace <= 0 {
		grace = 2 * time.Second
	}
	runCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	watched := r.watchStall(runCtx, stop, prog)
	res, err := supervisor.RunOnce(runCtx, supervisor.Spec{
		Path: j.Binary,
		Args: args,
		Dir:  dir, // sd-cli reads LoRAs from "." by default: keep that private
		// The service's tokens and settings stay with it (EngineEnv).
		Env:        j.Env,
		InheritEnv: true,
		KeepEnv:    EngineEnv,
		// sd-cli has no SIGTERM handler: the first SIGTERM ends it, SIGKILL follows grace.
		TermGrace:       grace,
		SecondTermGrace: -1,
		OnStart:         j.OnStart,
		OnChunk:         r.feed,
	})
	stop(nil)
	<-watched
	r.flush()
	if r.previews != nil {
		r.previews.close()
	}
	switch {
	case res.Stopped:
		if cause := context.Cause(runCtx); errors.Is(cause, enginerr.ErrStalled) {
			return Result{}, cause
		}
		return Result{}, fmt.Errorf("%s: %w", prog, ctx.Err())
	case err != nil:
		return Result{}, err
	case res.Exit.Code != 0:
		return Result{}, r.exitError(prog, res.Exit)
	}

	seeds := j.Params.Seeds()
	pngs := make([][]byte, len(seeds))
	for i := range seeds {
		path := OutputPath(out, i, len(seeds))
		data, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return Result{}, fmt.Errorf("%s exited 0 but wrote no image %s: %w", prog, filepath.Base(path), enginerr.ErrNoOutput)
		}
		if err != nil {
			return Result{}, fmt.Errorf("read %s image: %w", prog, err)
		}
		if err := pngcheck.Check(data, j.Params.Width, j.Params.Height); err != nil {
			return Result{}, fmt.Errorf("%s image %d: %w", prog, i, err)
		}
		pngs[i] = data
	}
	img := Result{PNG: pngs[0], Width: j.Params.Width, Height: j.Params.Height, Seed: seeds[0]}
	for i := 1; i < len(seeds); i++ {
		img.Batch = append(img.Batch, Image{PNG: pngs[i], Seed: seeds[i]})
	}
	return img, nil
}

// OutputPath is where sd-cli writes image i of a batch of n for -o out (out has no '%'): out
// itself for one image, else out with "_i" before its extension (image.png: image_0.png,
// image_1.png, ...), as master-827 names them.
func OutputPath(out string, i, n int) string {
	if n <= 1 {
		return out
	}
	ext := filepath.Ext(out)
	return fmt.Sprintf("%s_%d%s", strings.TrimSuffix(out, ext), i, ext)
}

// writeUploads writes an edit's image and mask into the run directory and names the files
// of the run.
func writeUploads(dir string, p imagereq.Params) (Files, error) {
	f := Files{Preview: filepath.Join(dir, "preview.png")}
	if p.Edit == nil {
		return f, nil
	}
	f.InitImage = filepath.Join(dir, "init")
	if err := os.WriteFile(f.InitImage, p.Edit.Image, 0o600); err != nil {
		return Files{}, fmt.Errorf("write the init image: %w", err)
	}
	if p.Edit.Mask != nil {
		f.Mask = filepath.Join(dir, "mask")
		if err := os.WriteFile(f.Mask, p.Edit.Mask, 0o600); err != nil {
			return Files{}, fmt.Errorf("write the mask: %w", err)
		}
	}
	return f, nil
}

// runner is the state shared by the output goroutines of one run.
type runner struct {
	job      Job
	activity atomic.Int64 // unix nanos of the latest output

	mu      sync.Mutex // serialises OnEvent and guards the tails and parsers
	errTail tail
	outTail tail
	parsers [3]sdprogress.Parser
	// previews is nil when none were asked for; image is the batch image being sampled.
	previews *previewWatcher
	image    int
}

func (r *runner) touch() { r.activity.Store(time.Now().UnixNano()) }

func (r *runner) lastActivity() time.Time { return time.Unix(0, r.activity.Load()) }

// watchStall cancels ctx with an enginerr.ErrStalled cause once the process has printed
// nothing for the job's StallTimeout; the returned channel is closed when it has stopped
// watching (ctx ended).
func (r *runner) watchStall(ctx context.Context, cancel context.CancelCauseFunc, prog string) <-chan struct{} {
	done := make(chan struct{})
	limit := r.job.StallTimeout
	if limit <= 0 {
		close(done)
		return done
	}
	go func() {
		defer close(done)
		t := time.NewTimer(limit)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			quiet := time.Since(r.lastActivity())
			if quiet < limit {
				t.Reset(limit - quiet)
				continue
			}
			cancel(fmt.Errorf("%s: %w: no output for %s", prog, enginerr.ErrStalled, quiet.Round(time.Millisecond)))
			return
		}
	}()
	return done
}

func (r *runner) feed(s supervisor.Stream, b []byte) {
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
	for _, s := range []supervisor.Stream{supervisor.Stdout, supervisor.Stderr} {
		r.parsers[s].Flush(func(ev sdprogress.Event) { r.handle(s, ev, now) })
	}
}

func (r *runner) handle(s supervisor.Stream, ev sdprogress.Event, at time.Time) {
	switch {
	case s == supervisor.Stderr:
		r.errTail.add(strings.TrimSpace(ev.Text))
	case ev.Kind == sdprogress.KindLog || ev.Kind == sdprogress.KindText:
		r.outTail.add(strings.TrimSpace(ev.Text))
		if ev.Marker == sdprogress.MarkerGeneratingImage && ev.Index > 0 {
			r.image = ev.Index - 1
		}
	case ev.Kind == sdprogress.KindStepBar && r.previews != nil && ev.Current > 0:
		r.previews.stepped(ev.Current, ev.Total, r.image)
	}
	if r.job.OnEvent != nil {
		r.job.OnEvent(s, ev, at)
	}
}

func (r *runner) exitError(prog string, exit supervisor.ExitStatus) error {
	r.mu.Lock()
	lines := r.errTail.get()
	if len(lines) == 0 {
		lines = r.outTail.get()
	}
	r.mu.Unlock()
	return &enginerr.ExitError{Program: prog, Code: exit.Code, Signal: exit.SignalName(), Lines: lines}
}

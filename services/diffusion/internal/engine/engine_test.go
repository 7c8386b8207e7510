package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/genailab/genailab/pkg/imagereq"
	"github.com/genailab/genailab/pkg/supervisor"
	"github.com/genailab/genailab/services/diffusion/internal/enginerr"
	"github.com/genailab/genailab/services/diffusion/internal/sdargs"
	"github.com/genailab/genailab/services/diffusion/internal/sdprogress"
	"github.com/genailab/genailab/services/diffusion/internal/standin/sdmodel"
	"github.com/genailab/genailab/services/diffusion/internal/standinbin"
)

var bins standinbin.Paths

func TestMain(m *testing.M) {
	var err error
	bins, err = standinbin.Build()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(bins.Dir)
	os.Exit(code)
}

func noPath(string) (string, error) { return "", errors.New("not found") }

func newEngine(t *testing.T, env ...string) (*Engine, string) {
	t.Helper()
	tmp := t.TempDir()
	e := New(Options{
		Binaries:     Binaries{CLI: bins.CLI, Server: bins.Server, LookPath: noPath},
		TempDir:      tmp,
		Env:          append([]string{"SDSTANDIN_BACKTRACE=none"}, env...),
		StallTimeout: 5 * time.Second,
		KillGrace:    time.Second,
	})
	t.Cleanup(func() { _ = e.Close(context.Background()) })
	return e, tmp
}

func testModel(t *testing.T) sdargs.Model {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tiny.gguf")
	if err := sdmodel.WriteTestModel(p); err != nil {
		t.Fatal(err)
	}
	return sdargs.Model{Path: p}
}

func params(steps int) imagereq.Params {
	return imagereq.Params{Prompt: "a red fox", Width: 64, Height: 64, Steps: steps, CFGScale: 7.5, Seed: 42, Sampler: "euler_a"}
}

type progressLog struct {
	mu sync.Mutex
	ps []Progress
	on func(Progress)
}

func (l *progressLog) sink(p Progress) {
	l.mu.Lock()
	l.ps = append(l.ps, p)
	f := l.on
	l.mu.Unlock()
	if f != nil {
		f(p)
	}
}

func (l *progressLog) get() []Progress {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Progress(nil), l.ps...)
}

// checkOrdered asserts the progress updates never go back.
func checkOrdered(t *testing.T, ps []Progress) {
	t.Helper()
	for i := 1; i < len(ps); i++ {
		a, b := ps[i-1], ps[i]
		if b.Stage < a.Stage || b.Step < a.Step || b.Percent < a.Percent || b.Elapsed < a.Elapsed {
			t.Fatalf("progress went back at %d: %+v -> %+v", i, a, b)
		}
	}
}

func TestStartValidation(t *testing.T) {
	e, _ := newEngine(t)
	if _, err := e.Start(context.Background(), Config{Mode: ModeCLI}); !errors.Is(err, sdargs.ErrNoModel) {
		t.Errorf("start without model: %v", err)
	}
	if _, err := e.Start(context.Background(), Config{Mode: ModeCLI, Model: sdargs.Model{Path: "/nonexistent/x.gguf"}}); !errors.Is(err, enginerr.ErrModelMissing) {
		t.Errorf("start with a missing model file: %v", err)
	}
	if _, err := e.Generate(context.Background(), params(2), nil); !errors.Is(err, enginerr.ErrNotRunning) {
		t.Errorf("generate while stopped: %v", err)
	}
	if in := e.Info(); in.Status != supervisor.StateStopped || in.Busy {
		t.Errorf("info %+v", in)
	}
	m := testModel(t)
	if _, err := e.Start(context.Background(), Config{Mode: ModeCLI, Model: m}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Start(context.Background(), Config{Mode: ModeCLI, Model: m}); !errors.Is(err, enginerr.ErrAlreadyRunning) {
		t.Errorf("second start: %v", err)
	}
	if _, err := e.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Stop(context.Background()); err != nil {
		t.Errorf("stopping a stopped engine: %v", err)
	}
}

func TestBinaryResolution(t *testing.T) {
	_, err := Binaries{LookPath: noPath}.Resolve(ModeCLI, DefaultHints)
	if !errors.Is(err, enginerr.ErrNoEngine) || !strings.Contains(err.Error(), "-sd-cli") || !strings.Contains(err.Error(), "-demo-engines") {
		t.Errorf("no binary: %v", err)
	}
	e := New(Options{Binaries: Binaries{LookPath: noPath}})
	if in := e.Info(); !strings.Contains(in.Unavailable, "no sd-cli found") {
		t.Errorf("unavailable reason %q", in.Unavailable)
	}
	if _, err := e.Start(context.Background(), Config{Model: testModel(t)}); !errors.Is(err, enginerr.ErrNoEngine) {
		t.Errorf("start without binary: %v", err)
	}
	// PATH: sd-cli first, then sd.
	look := func(name string) (string, error) {
		if name == "sd" {
			return bins.CLI, nil
		}
		return "", errors.New("no")
	}
	if b, err := (Binaries{LookPath: look}).Resolve(ModeCLI, DefaultHints); err != nil || b.Path != bins.CLI || b.Demo {
		t.Errorf("PATH sd: %+v %v", b, err)
	}
	// A configured path wins and must be executable.
	if _, err := (Binaries{CLI: filepath.Join(t.TempDir(), "nope")}).Resolve(ModeCLI, DefaultHints); !errors.Is(err, enginerr.ErrNoEngine) {
		t.Errorf("configured missing: %v", err)
	}
	// Demo mode uses the stand-ins and says so.
	if b, err := (Binaries{Demo: true, DemoDir: bins.Dir, CLI: "/ignored"}).Resolve(ModeCLI, DefaultHints); err != nil || !b.Demo || b.Path != bins.CLI {
		t.Errorf("demo: %+v %v", b, err)
	}
	if _, err := (Binaries{Demo: true, DemoDir: t.TempDir(), LookPath: noPath}).Resolve(ModeCLI, DefaultHints); !errors.Is(err, enginerr.ErrNoEngine) || !strings.Contains(err.Error(), "go build") {
		t.Errorf("demo without stand-ins: %v", err)
	}
}

// On the real sd-cli.
func TestCLIGenerate(t *testing.T) {
	e, tmp := startReal(t, ModeCLI)
	var l progressLog
	res, err := e.Generate(context.Background(), params(8), l.sink)
	if err != nil {
		t.Fatal(err)
	}
	if res.Seed != 42 || res.Width != 64 || res.Height != 64 || res.TimeTaken <= 0 || res.Demo {
		t.Errorf("result %+v", res)
	}
	ps := l.get()
	checkOrdered(t, ps)
	var steps []int
	for _, p := range ps {
		if p.Stage == sdprogress.StageSampling && p.Step > 0 && (len(steps) == 0 || steps[len(steps)-1] != p.Step) {
			steps = append(steps, p.Step)
		}
	}
	if fmt.Sprint(steps) != "[1 2 3 4 5 6 7 8]" {
		t.Errorf("steps %v", steps)
	}
	last := ps[len(ps)-1]
	if last.Stage != sdprogress.StageDone || last.Percent != 100 || last.Step != 8 || last.TotalSteps != 8 {
		t.Errorf("last progress %+v", last)
	}
	if ps[0].Stage != sdprogress.StageLoading {
		t.Errorf("first progress %+v", ps[0])
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Errorf("temporary files left: %v", ents)
	}
	logs := e.Logs().Tail(1000)
	var sawSave bool
	for _, l := range logs {
		sawSave = sawSave || strings.Contains(l.Message, "save result image 0")
	}
	if !sawSave {
		t.Errorf("log ring misses the save line (%d lines)", len(logs))
	}
	if in := e.Info(); in.Busy || in.Current != nil || in.Status != supervisor.StateRunning {
		t.Errorf("info after generation %+v", in)
	}
}

// On the real sd-cli.
func TestCLIBusyAndCancel(t *testing.T) {
	e, tmp := startReal(t, ModeCLI)
	var l progressLog
	sampling := make(chan struct{})
	var once sync.Once
	l.on = func(p Progress) {
		if p.Step >= 2 {
			once.Do(func() { close(sampling) })
		}
	}
	errc := make(chan error, 1)
	go func() {
		_, err := e.Generate(context.Background(), params(100), l.sink)
		errc <- err
	}()
	select {
	case <-sampling:
	case err := <-errc:
		t.Fatalf("generation ended early: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("no step progress")
	}
	in := e.Info()
	if !in.Busy || in.PID == 0 || in.Current == nil || in.Current.Stage != sdprogress.StageSampling {
		t.Fatalf("info while generating %+v", in)
	}
	pid := in.PID
	if _, err := e.Generate(context.Background(), params(2), nil); !errors.Is(err, enginerr.ErrBusy) || err.Error() != "Server is busy generating another image" {
		t.Errorf("concurrent generation: %v", err)
	}
	ok, err := e.CancelGeneration(context.Background())
	if !ok || err != nil {
		t.Fatalf("cancel: %v %v", ok, err)
	}
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled generation: %v", err)
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
		t.Errorf("sd-cli %d still exists", pid)
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Errorf("temporary files left: %v", ents)
	}
	if ok, _ := e.CancelGeneration(context.Background()); ok {
		t.Error("cancel with nothing running reported true")
	}
	// The engine is usable again.
	if _, err := e.Generate(context.Background(), params(2), nil); err != nil {
		t.Errorf("generation after cancel: %v", err)
	}
}

// On the real sd-cli.
func TestCLIStopDuringGeneration(t *testing.T) {
	e, tmp := startReal(t, ModeCLI)
	started := make(chan struct{})
	var once sync.Once
	l := progressLog{on: func(p Progress) {
		if p.Step >= 1 {
			once.Do(func() { close(started) })
		}
	}}
	errc := make(chan error, 1)
	go func() {
		_, err := e.Generate(context.Background(), params(100), l.sink)
		errc <- err
	}()
	<-started
	pid := e.Info().PID
	in, err := e.Stop(context.Background())
	if err != nil || in.Status != supervisor.StateStopped || in.Busy {
		t.Fatalf("stop: %+v %v", in, err)
	}
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("generation during stop: %v", err)
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
		t.Errorf("sd-cli %d still exists", pid)
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Errorf("temporary files left: %v", ents)
	}
	var kinds []string
	for _, ev := range e.Events().Tail(100) {
		kinds = append(kinds, string(ev.Type))
	}
	if got := strings.Join(kinds, ","); got != "ready,generation_started,generation_finished,stopped" {
		t.Errorf("events %s", got)
	}
}

func TestCLIFailureReportsExit(t *testing.T) {
	e, _ := newEngine(t, "SDSTANDIN_FAIL=segv")
	if _, err := e.Start(context.Background(), Config{Mode: ModeCLI, Model: testModel(t)}); err != nil {
		t.Fatal(err)
	}
	_, err := e.Generate(context.Background(), params(4), nil)
	var ee *enginerr.ExitError
	if !errors.As(err, &ee) || ee.Signal != "SIGSEGV" {
		t.Fatalf("got %v", err)
	}
	if in := e.Info(); in.LastError == "" || in.Status != supervisor.StateRunning {
		t.Errorf("info %+v", in)
	}
}

// Regression: after a Start that failed on a missing file, lastError still showed the previous
// model's error. Every failed Start reports its own cause.
func TestFailedStartReportsItsOwnCause(t *testing.T) {
	e, _ := newEngine(t)
	dir := t.TempDir()
	cut := filepath.Join(dir, "cut.gguf")
	good := testModel(t)
	b, err := os.ReadFile(good.Path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cut, b[:len(b)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Start(context.Background(), Config{Mode: ModeCLI, Model: sdargs.Model{Path: cut}}); err == nil {
		t.Fatal("a truncated model started")
	}
	if in := e.Info(); !strings.Contains(in.LastError, "cut.gguf") || in.Status != supervisor.StateStopped {
		t.Fatalf("after the truncated model: %+v", in)
	}
	missing := filepath.Join(dir, "missing.gguf")
	if _, err := e.Start(context.Background(), Config{Mode: ModeCLI, Model: sdargs.Model{Path: missing}}); !errors.Is(err, enginerr.ErrModelMissing) {
		t.Fatalf("missing model: %v", err)
	}
	if in := e.Info(); !strings.Contains(in.LastError, "missing.gguf") || strings.Contains(in.LastError, "cut.gguf") {
		t.Fatalf("lastError %q, want the missing file's error", in.LastError)
	}
	if _, err := e.Start(context.Background(), Config{Mode: ModeCLI, Model: good}); err != nil {
		t.Fatal(err)
	}
	if in := e.Info(); in.LastError != "" {
		t.Fatalf("a successful start keeps lastError %q", in.LastError)
	}
}

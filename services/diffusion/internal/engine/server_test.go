package engine

import (
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/genailab/genailab/pkg/imagereq"
	"github.com/genailab/genailab/pkg/ports"
	"github.com/genailab/genailab/pkg/supervisor"
	"github.com/genailab/genailab/pkg/testenv"
	"github.com/genailab/genailab/services/diffusion/internal/enginerr"
	"github.com/genailab/genailab/services/diffusion/internal/sdprogress"
)

// startServer starts the real sd-server (testenv) with the tiny model.
func startServer(t *testing.T) *Engine {
	t.Helper()
	e, _ := startReal(t, ModeServer)
	if in := e.Info(); in.Status != supervisor.StateRunning || in.PID == 0 || in.Port == 0 || in.Health != supervisor.HealthOK {
		t.Fatalf("info after start %+v", in)
	}
	return e
}

// startStandinServer starts the sd-server stand-in, for the failures the real engine cannot be
// made to show on demand (SDSTANDIN_FAIL: a failed job, an out-of-memory message, no output, a
// crash, a hang).
func startStandinServer(t *testing.T, env ...string) *Engine {
	t.Helper()
	if bins.Server == "" {
		t.Skip("sd-server stand-in not built")
	}
	e, _ := newEngine(t, env...)
	in, err := e.Start(context.Background(), Config{Mode: ModeServer, ModelID: "tiny", Model: testModel(t), ReadyTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if in.Status != supervisor.StateRunning || in.PID == 0 || in.Port == 0 || in.Health != supervisor.HealthOK {
		t.Fatalf("info after start %+v", in)
	}
	return e
}

func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return err == nil && !strings.Contains(string(b), ") Z ")
}

func TestServerGenerate(t *testing.T) {
	e := startServer(t)
	pid := e.Info().PID
	for i := range 2 {
		var l progressLog
		res, err := e.Generate(context.Background(), params(8), l.sink)
		if err != nil {
			t.Fatalf("generation %d: %v", i, err)
		}
		if res.Width != 64 || res.Height != 64 || res.Seed != 42 {
			t.Errorf("result %+v", res)
		}
		ps := l.get()
		checkOrdered(t, ps)
		last := ps[len(ps)-1]
		var sawStep bool
		for _, p := range ps {
			sawStep = sawStep || p.Stage == sdprogress.StageSampling && p.Step > 0 && p.Step < 8
		}
		if !sawStep || last.Stage != sdprogress.StageDone || last.Percent != 100 || last.Step != 8 {
			t.Errorf("generation %d: progress from sd-server's stdout: %d updates, last %+v", i, len(ps), last)
		}
	}
	if e.Info().PID != pid {
		t.Error("sd-server was restarted between generations")
	}
	if _, err := e.Generate(context.Background(), params(101), nil); !errors.Is(err, imagereq.ErrInvalid) {
		t.Errorf("101 steps in server mode: %v", err)
	}
	if _, err := e.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if alive(pid) {
		t.Errorf("sd-server %d alive after stop", pid)
	}
}

// sd-server sets SO_REUSEPORT and starts happily on a busy port; the engine checks first.
func TestServerPortInUse(t *testing.T) {
	if bins.Server == "" {
		t.Skip("sd-server stand-in not built")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	e, _ := newEngine(t)
	_, err = e.Start(context.Background(), Config{Mode: ModeServer, Model: testModel(t), Port: l.Addr().(*net.TCPAddr).Port})
	if !errors.Is(err, ports.ErrPortInUse) {
		t.Fatalf("start on a busy port: %v", err)
	}
	if in := e.Info(); in.Status != supervisor.StateStopped || in.PID != 0 {
		t.Errorf("info %+v", in)
	}
}

// Cancelling a generating job: sd-server answers 409, so the engine restarts it.
func TestServerCancelGeneratingRestarts(t *testing.T) {
	e := startServer(t)
	pid := e.Info().PID
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
		t.Fatalf("ended early: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("no step progress from sd-server")
	}
	if _, err := e.Generate(context.Background(), params(2), nil); !errors.Is(err, enginerr.ErrBusy) {
		t.Errorf("concurrent: %v", err)
	}
	if ok, err := e.CancelGeneration(context.Background()); !ok || err != nil {
		t.Fatalf("cancel %v %v", ok, err)
	}
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	if alive(pid) {
		t.Errorf("the old sd-server %d is still alive after the cancel", pid)
	}
	// The next generation waits for the restarted sd-server.
	if _, err := e.Generate(context.Background(), params(2), nil); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	if in := e.Info(); in.PID == pid || in.PID == 0 || in.Status != supervisor.StateRunning {
		t.Errorf("info after restart %+v (old pid %d)", in, pid)
	}
	if !strings.Contains(logText(e), "restarting sd-server: cancel of generating job") {
		t.Error("log does not say why sd-server was restarted")
	}
}

func logText(e *Engine) string {
	var b strings.Builder
	for _, l := range e.Logs().Tail(5000) {
		b.WriteString(l.Message + "\n")
	}
	return b.String()
}

func TestServerStopDuringGeneration(t *testing.T) {
	e := startServer(t)
	pid := e.Info().PID
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
	in, err := e.Stop(context.Background())
	if err != nil || in.Status != supervisor.StateStopped {
		t.Fatalf("stop %+v %v", in, err)
	}
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("generation: %v", err)
	}
	time.Sleep(100 * time.Millisecond) // a restart begun by the cancel must not outlive Stop
	if alive(pid) {
		t.Errorf("sd-server %d alive after stop", pid)
	}
	for _, pid := range sdServerPIDs(t) {
		t.Errorf("an sd-server (pid %d) is left after Stop", pid)
	}
}

// sdServerPIDs lists the running sd-server processes of the real build the tests use.
func sdServerPIDs(t *testing.T) []int {
	t.Helper()
	server := testenv.RequireRealSD(t).Server
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		exe, err := os.Readlink("/proc/" + ent.Name() + "/exe")
		if err == nil && exe == server && alive(pid) {
			out = append(out, pid)
		}
	}
	return out
}

func TestServerFailures(t *testing.T) {
	cases := []struct {
		name  string
		env   []string
		check func(error) bool
	}{
		{"error", []string{"SDSTANDIN_FAIL=error"}, func(err error) bool { return errors.Is(err, enginerr.ErrEngineFailed) }},
		{"oom", []string{"SDSTANDIN_FAIL=oom"}, func(err error) bool {
			return errors.Is(err, enginerr.ErrEngineFailed) && errors.Is(err, enginerr.ErrOutOfMemory)
		}},
		{"noout", []string{"SDSTANDIN_FAIL=noout"}, func(err error) bool { return errors.Is(err, enginerr.ErrNoOutput) }},
		{"segv", []string{"SDSTANDIN_FAIL=segv"}, func(err error) bool {
			var ee *enginerr.ExitError
			return errors.As(err, &ee) && ee.Signal == "SIGSEGV"
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := startStandinServer(t, c.env...)
			_, err := e.Generate(context.Background(), params(4), nil)
			if err == nil || !c.check(err) {
				t.Fatalf("got %v", err)
			}
			if c.name == "segv" {
				var crashed bool
				for _, ev := range e.Events().Tail(100) {
					crashed = crashed || ev.Type == supervisor.EventCrashed && ev.Exit != nil && ev.Exit.SignalName() == "SIGSEGV"
				}
				if !crashed {
					t.Error("no crashed event")
				}
				// The supervisor restarts it.
				deadline := time.Now().Add(20 * time.Second)
				for e.Info().Status != supervisor.StateRunning {
					if time.Now().After(deadline) {
						t.Fatalf("not running again after the crash: %+v", e.Info())
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
		})
	}
}

func TestServerStall(t *testing.T) {
	if bins.Server == "" {
		t.Skip("sd-server stand-in not built")
	}
	e := New(Options{
		Binaries:     Binaries{Server: bins.Server, LookPath: noPath},
		TempDir:      t.TempDir(),
		Env:          []string{"SDSTANDIN_BACKTRACE=none", "SDSTANDIN_FAIL=hang"},
		StallTimeout: 400 * time.Millisecond,
		KillGrace:    time.Second,
	})
	t.Cleanup(func() { _ = e.Close(context.Background()) })
	if _, err := e.Start(context.Background(), Config{Mode: ModeServer, Model: testModel(t)}); err != nil {
		t.Fatal(err)
	}
	pid := e.Info().PID
	_, err := e.Generate(context.Background(), params(6), nil)
	if !errors.Is(err, enginerr.ErrStalled) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	if alive(pid) {
		t.Errorf("stalled sd-server %d still alive", pid)
	}
}

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	monitorv1 "github.com/genailab/genailab/gen/monitor/v1"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/pkg/ggufgen"
	"github.com/genailab/genailab/pkg/modelstore"
	"github.com/genailab/genailab/pkg/testenv"
)

// The binaries built by TestMain, and the real engines (testenv's policy: a missing engine
// skips the tests that need it, or fails them under GENAILAB_REQUIRE_LLAMA=1 /
// GENAILAB_REQUIRE_SDCPP=1; any other error fails).
var (
	binDir      string
	llamaServer string
	llamaErr    error
	realSD      testenv.RealSD
	realSDErr   error
)

const (
	tinyModel = "tiny-e2e"
	// tinySD is the id of the tiny random-weight Stable Diffusion model (testenv.TinySDModel) in
	// the diffusion service's store on the real engine; the stand-in's model is "demo".
	tinySD = "tinysd"
	demoSD = "demo"
	// sdThreads is 1: ggml's own thread pool (this sd.cpp is built without OpenMP) spins, and
	// with 2 threads on a 2-core machine that other programs share an image takes 3–4× longer
	// than with 1 thread (measured: 64x64, 5 steps, 2.5–3.5 s with -t 1, 11–12.6 s with -t 2).
	sdThreads  = 1
	llmThreads = 1
)

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	root := repoRoot()
	// Each test hands these errors to testenv.Need: TestMain cannot skip.
	llamaServer, llamaErr = testenv.FindLlamaServer()
	realSD, realSDErr = testenv.FindRealSD()
	// The services are built whatever engines are here: a build error fails the package, it never
	// turns the tests into skips.
	dir, err := os.MkdirTemp("", "genailab-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binDir = dir
	builds := []struct{ module, name string }{
		{"services/llm", "genailab-llm"},
		{"services/diffusion", "genailab-diffusion"},
		{"services/monitor", "genailab-monitor"},
		{"services/orchestrator", "genailab-orchestrator"},
		{"services/gateway", "genailab-gateway"},
		// The demo engine (the sd.cpp stand-ins), beside the diffusion service, for the tests
		// that need a failure the real engine cannot be made to show.
		{"services/diffusion", "sd-cli-standin"},
		{"services/diffusion", "sd-server-standin"},
	}
	for _, b := range builds {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, b.name), "./cmd/"+b.name)
		cmd.Dir = filepath.Join(root, b.module)
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", b.name, err, out)
			return 1
		}
	}
	return m.Run()
}

// proc is a started service process.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  *bytes.Buffer
	mu   *sync.Mutex
	done chan struct{}
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (p *proc) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// stop ends the process with SIGTERM (SIGKILL after a grace).
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// kill ends the process with SIGKILL, as a crash would.
func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// startProc starts a binary and returns once it has written addrFile.
func startProc(t testing.TB, name string, env []string, addrFiles []string, args ...string) (*proc, []string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, name), args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p := &proc{name: name, cmd: cmd, log: &bytes.Buffer{}, mu: &sync.Mutex{}, done: make(chan struct{})}
	cmd.Stdout = lockedWriter{p.mu, p.log}
	cmd.Stderr = lockedWriter{p.mu, p.log}
	for _, f := range addrFiles {
		_ = os.Remove(f)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { _ = cmd.Wait(); close(p.done) }()
	addrs := make([]string, len(addrFiles))
	deadline := time.Now().Add(30 * time.Second)
	for i, f := range addrFiles {
		for {
			if b, err := os.ReadFile(f); err == nil && len(b) > 0 {
				addrs[i] = strings.TrimSpace(string(b))
				break
			}
			select {
			case <-p.done:
				t.Fatalf("%s exited during start:\n%s", name, p.logs())
			default:
			}
			if time.Now().After(deadline) {
				p.stop()
				t.Fatalf("%s did not write %s:\n%s", name, f, p.logs())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return p, addrs
}

func dial(t testing.TB, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true)); err != nil {
		t.Fatalf("health of %s: %v", addr, err)
	}
	return cc
}

// stackOptions choose the stack's settings.
type stackOptions struct {
	// Budget is the orchestrator's -budget-bytes (0: none). 1 forces every offload.
	Budget uint64
	// QueueSize is the orchestrator's -queue-size (0: default 8).
	QueueSize int
	// StandIn runs the diffusion service on the sd.cpp stand-in (-demo-engines, model "demo")
	// instead of the real stable-diffusion.cpp with the tiny model: only for what the real engine
	// cannot be made to do on demand (a failure such as SDSTANDIN_FAIL=error).
	StandIn bool
	// StepMS is the stand-in's sampling step time (0: 20 ms; stand-in only: the real engine's
	// speed is set by the image's size and steps).
	StepMS int
	// StandInEnv adds SDSTANDIN_* variables to the diffusion service (stand-in only).
	StandInEnv []string
	// DiffusionArgs adds flags to the diffusion service (e.g. a short -stall-timeout).
	DiffusionArgs []string
	// Mode is the diffusion engine's mode (unset: one sd-cli per image).
	Mode diffusionv1.EngineMode
	// Gateway starts the REST gateway too.
	Gateway bool
	// OrchestratorArgs adds flags to the orchestrator (e.g. -late-reload).
	OrchestratorArgs []string
}

// stack is a running single-host stack.
type stack struct {
	t       testing.TB
	dir     string
	opts    stackOptions
	procs   map[string]*proc
	addrs   map[string]string
	llm     llmv1.LLMServiceClient
	diff    diffusionv1.DiffusionServiceClient
	mon     monitorv1.MonitorServiceClient
	orch    orchestratorv1.OrchestratorServiceClient
	events  *eventLog
	gateway string // http://host:port
	diffHTT string // http://host:port of the diffusion seed wrapper
	// diffModel is the diffusion model the engine runs (tinySD, or demoSD on the stand-in).
	diffModel string
}

func newStack(t testing.TB, o stackOptions) *stack {
	t.Helper()
	testenv.Need(t, testenv.RequireLlamaEnv, llamaErr)
	if o.StandIn {
		if o.StepMS == 0 {
			o.StepMS = 20
		}
	} else {
		if o.StepMS != 0 || len(o.StandInEnv) != 0 {
			t.Fatal("StepMS and StandInEnv are stand-in knobs: set StandIn")
		}
		testenv.Need(t, testenv.RequireSDCPPEnv, realSDErr)
	}
	dir, err := os.MkdirTemp("", "genailab-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	s := &stack{t: t, dir: dir, opts: o, procs: map[string]*proc{}, addrs: map[string]string{}}
	t.Cleanup(func() {
		for _, name := range []string{"gateway", "orchestrator", "diffusion", "llm", "monitor"} {
			if p := s.procs[name]; p != nil {
				p.stop()
			}
		}
		if t.Failed() {
			for name, p := range s.procs {
				t.Logf("---- %s log ----\n%s", name, tail(p.logs(), 6000))
			}
		}
		os.RemoveAll(dir)
	})
	data := filepath.Join(dir, "data")
	// The tiny model in the LLM service's store (what the quick start installs).
	store, err := modelstore.Open(modelstore.Options{DataDir: data, Type: modelstore.TypeLLM})
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "tiny.gguf")
	if err := ggufgen.WriteFile(src, ggufgen.DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Import(context.Background(), tinyModel, "tiny random-weight test model", src); err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(dir, "run")
	_ = os.MkdirAll(run, 0o700)
	af := func(n string) string { return filepath.Join(run, n+".addr") }

	var a []string
	s.procs["monitor"], a = startProc(t, "genailab-monitor", nil, []string{af("monitor")},
		"-grpc-addr", "127.0.0.1:0", "-addr-file", af("monitor"), "-metrics-addr", "off", "-data-dir", data)
	s.addrs["monitor"] = a[0]
	s.procs["llm"], a = startProc(t, "genailab-llm", nil, []string{af("llm")},
		"-grpc-addr", "127.0.0.1:0", "-addr-file", af("llm"), "-data-dir", data, "-llama-server", llamaServer)
	s.addrs["llm"] = a[0]
	denv, dengine := diffusionEngine(t, data, o.StandIn, o.StepMS, o.StandInEnv)
	s.diffModel = tinySD
	if o.StandIn {
		s.diffModel = demoSD
	}
	s.procs["diffusion"], a = startProc(t, "genailab-diffusion", denv, []string{af("diffusion"), af("diffusion-http")},
		append([]string{"-grpc-addr", "127.0.0.1:0", "-addr-file", af("diffusion"), "-http-addr", "127.0.0.1:0", "-http-addr-file", af("diffusion-http"),
			"-data-dir", data, "-temp-dir", dir}, append(dengine, o.DiffusionArgs...)...)...)
	s.addrs["diffusion"], s.diffHTT = a[0], "http://"+a[1]
	s.llm = llmv1.NewLLMServiceClient(dial(t, s.addrs["llm"]))
	s.diff = diffusionv1.NewDiffusionServiceClient(dial(t, s.addrs["diffusion"]))
	s.mon = monitorv1.NewMonitorServiceClient(dial(t, s.addrs["monitor"]))

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := s.llm.Start(ctx, &llmv1.StartRequest{Config: &llmv1.LLMConfig{ModelId: tinyModel, ContextSize: 256, Threads: llmThreads}}); err != nil {
		t.Fatalf("start the LLM: %v\n%s", err, s.procs["llm"].logs())
	}
	if _, err := s.diff.Start(ctx, &diffusionv1.StartRequest{Config: diffusionConfig(o.StandIn, o.Mode)}); err != nil {
		t.Fatalf("start diffusion: %v\n%s", err, s.procs["diffusion"].logs())
	}
	s.startOrchestrator()
	if o.Gateway {
		s.procs["gateway"], a = startProc(t, "genailab-gateway", nil, []string{af("gateway")},
			"-http-addr", "127.0.0.1:0", "-addr-file", af("gateway"), "-llm-addr", s.addrs["llm"], "-diffusion-addr", s.addrs["diffusion"],
			"-monitor-addr", s.addrs["monitor"], "-orchestrator-addr", s.addrs["orchestrator"])
		s.gateway = "http://" + a[0]
	}
	return s
}

// diffusionEngine returns the diffusion service's environment and engine flags. On the real
// engine (standIn false) it imports the tiny model into the store under data as tinySD and
// points the service at the real sd-cli and sd-server; on the stand-in it sets its knobs.
func diffusionEngine(t testing.TB, data string, standIn bool, stepMS int, standInEnv []string) (env, args []string) {
	t.Helper()
	if standIn {
		env = append([]string{"SDSTANDIN_STEP_MS=" + strconv.Itoa(stepMS), "SDSTANDIN_STAGE_MS=5", "SDSTANDIN_BACKTRACE=none"}, standInEnv...)
		return env, []string{"-demo-engines"}
	}
	importTinySD(t, data)
	return nil, []string{"-sd-cli", realSD.CLI, "-sd-server", realSD.Server}
}

// importTinySD imports the tiny Stable Diffusion model into the diffusion store under data.
func importTinySD(t testing.TB, data string) {
	t.Helper()
	store, err := modelstore.Open(modelstore.Options{DataDir: data, Type: modelstore.TypeDiffusion})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Import(context.Background(), tinySD, "tiny random-weight SD (test model)", realSD.Model); err != nil {
		t.Fatal(err)
	}
}

// diffusionConfig is the engine configuration the tests start: the tiny model on the real
// engine (sd-cli unless mode says otherwise), the demo model on the stand-in.
func diffusionConfig(standIn bool, mode diffusionv1.EngineMode) *diffusionv1.DiffusionConfig {
	if standIn {
		return &diffusionv1.DiffusionConfig{ModelId: demoSD, Mode: mode}
	}
	return &diffusionv1.DiffusionConfig{ModelId: tinySD, Mode: mode, Threads: sdThreads}
}

// startOrchestrator starts (or restarts) the orchestrator on the stack's data directory.
func (s *stack) startOrchestrator() {
	t := s.t
	t.Helper()
	af := filepath.Join(s.dir, "run", "orchestrator.addr")
	args := []string{"-grpc-addr", "127.0.0.1:0", "-addr-file", af, "-data-dir", filepath.Join(s.dir, "data"),
		"-llm-addr", s.addrs["llm"], "-diffusion-addr", s.addrs["diffusion"], "-monitor-addr", s.addrs["monitor"],
		"-budget-bytes", strconv.FormatUint(s.opts.Budget, 10), "-reload-backoff", "100ms", "-reload-backoff-max", "1s",
		"-free-timeout", "10s", "-drain-timeout", "5s"}
	if s.opts.QueueSize > 0 {
		args = append(args, "-queue-size", strconv.Itoa(s.opts.QueueSize))
	}
	args = append(args, s.opts.OrchestratorArgs...)
	p, a := startProc(t, "genailab-orchestrator", nil, []string{af}, args...)
	s.procs["orchestrator"] = p
	s.addrs["orchestrator"] = a[0]
	s.orch = orchestratorv1.NewOrchestratorServiceClient(dial(t, a[0]))
	s.events = watchEvents(t, s.orch)
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

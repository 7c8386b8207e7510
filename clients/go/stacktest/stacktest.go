// Package stacktest runs a real genailab stack for the tests of clients: it builds the
// service binaries and `genailab` with `go build`, then starts `genailab up` on
// ephemeral loopback ports with its own data directory, and stops it with SIGINT (the
// launcher then stops every service and engine). It is the same stack users run; only
// the sd.cpp engines are the real stable-diffusion.cpp when Options.SD is set (RealSD), the
// stand-ins when DemoEngines is.
package stacktest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/genailab/genailab/pkg/llamabin"
	"github.com/genailab/genailab/pkg/testenv"
)

// DiffusionModelID is the store id the real engine's tiny model gets (genailab up derives it
// from the file name).
func DiffusionModelID(sd *testenv.RealSD) string {
	if sd == nil {
		return "demo"
	}
	base := filepath.Base(sd.Model)
	return strings.TrimSuffix(base, filepath.Ext(base))
}

// RealSD is the test policy for client tests that make images: the real stable-diffusion.cpp
// with the tiny model when testenv finds it; a failure when it is missing and
// GENAILAB_REQUIRE_SDCPP=1 (CI); otherwise nil, and the stack runs the demo stand-in (say so
// with the returned note). Any other error (a failed model generation) is returned.
func RealSD() (sd *testenv.RealSD, note string, err error) {
	r, err := testenv.FindRealSD()
	if err == nil {
		return &r, "images: the real stable-diffusion.cpp in " + r.Dir, nil
	}
	if errors.Is(err, testenv.ErrMissing) && os.Getenv(testenv.RequireSDCPPEnv) != "1" {
		return nil, fmt.Sprintf("images: the demo stand-in (%v; set %s=1 to make this a failure)", err, testenv.RequireSDCPPEnv), nil
	}
	return nil, "", err
}

// Packages are the binaries a stack needs.
var Packages = []string{
	"github.com/genailab/genailab/stack/cmd/genailab",
	"github.com/genailab/genailab/services/llm/cmd/genailab-llm",
	"github.com/genailab/genailab/services/diffusion/cmd/genailab-diffusion",
	"github.com/genailab/genailab/services/monitor/cmd/genailab-monitor",
	"github.com/genailab/genailab/services/orchestrator/cmd/genailab-orchestrator",
	"github.com/genailab/genailab/services/gateway/cmd/genailab-gateway",
	// The demo engine (the sd.cpp stand-ins), a program of its own beside the services.
	"github.com/genailab/genailab/services/diffusion/cmd/sd-cli-standin",
	"github.com/genailab/genailab/services/diffusion/cmd/sd-server-standin",
}

// Names are the services whose address a started stack knows.
var Names = []string{"llm", "diffusion", "monitor", "orchestrator", "gateway", "diffusion-http"}

// MetricsNames are the services that serve Prometheus /metrics; Stack.MetricsAddrs has
// their addresses (each service writes run/<name>-metrics.addr).
var MetricsNames = []string{"llm", "diffusion", "monitor", "orchestrator", "gateway"}

// Root returns the repository root: the nearest directory above the working directory that
// holds go.work (testenv.RepoRoot).
func Root() (string, error) { return testenv.RepoRoot() }

// Build compiles the packages (import paths of the workspace) into dir, using the
// repository's go.work even when GOWORK=off is set for the module under test.
func Build(ctx context.Context, dir string, packages ...string) error {
	root, err := Root()
	if err != nil {
		return err
	}
	args := append([]string{"build", "-o", dir + string(filepath.Separator)}, packages...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOWORK="+filepath.Join(root, "go.work"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	return nil
}

// Options configure a stack.
type Options struct {
	// BinDir holds the binaries built by Build; required.
	BinDir string
	// DataDir is the stack's data directory; required.
	DataDir string
	// DemoEngines runs the stable-diffusion.cpp stand-in.
	DemoEngines bool
	// SD runs the real stable-diffusion.cpp (and imports SD.Model into the store as the
	// diffusion model started at boot); see RealSD.
	SD *testenv.RealSD
	// DiffusionMode is "cli" (default) or "server".
	DiffusionMode string
	// Token protects every service.
	Token string
	// NoTinyModel skips generating and starting the tiny random-weight LLM.
	NoTinyModel bool
	// Env is added to the launcher's environment (the services and engines inherit it),
	// for example "SDSTANDIN_STEP_MS=200".
	Env []string
	// ReadyTimeout bounds the start; default 2 minutes.
	ReadyTimeout time.Duration
}

// Stack is a running `genailab up`.
type Stack struct {
	// Addrs maps Names to their bound addresses.
	Addrs map[string]string
	// MetricsAddrs maps MetricsNames to their /metrics addresses.
	MetricsAddrs map[string]string
	DataDir      string

	cmd    *exec.Cmd
	out    *tail
	exited chan struct{}
	err    error
}

// upLine is what the launcher prints once every service is ready.
const upLine = "genailab is up."

// Start launches the stack and returns once every service is ready.
func Start(ctx context.Context, o Options) (*Stack, error) {
	if o.BinDir == "" || o.DataDir == "" {
		return nil, errors.New("stacktest: BinDir and DataDir are required")
	}
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = 2 * time.Minute
	}
	args := []string{"up", "-ephemeral-ports", "-gateway-addr", "127.0.0.1:0", "-data-dir", o.DataDir, "-bin-dir", o.BinDir, "-log-level", "info"}
	if o.DemoEngines {
		args = append(args, "-demo-engines")
	}
	if o.SD != nil {
		args = append(args, "-sd-cli", o.SD.CLI, "-sd-server", o.SD.Server, "-diffusion-model-file", o.SD.Model)
	}
	if o.DiffusionMode != "" {
		args = append(args, "-diffusion-mode", o.DiffusionMode)
	}
	if o.Token != "" {
		args = append(args, "-token", o.Token)
	}
	if o.NoTinyModel {
		args = append(args, "-no-tiny-model")
	}
	// The real llama-server, found from the test's working directory (the repository's
	// .engines install); the launcher's own lookup would start from the same place.
	if found, err := llamabin.Resolve(""); err == nil {
		args = append(args, "-llama-server", found.Path)
	}
	cmd := exec.Command(filepath.Join(o.BinDir, "genailab"), args...)
	cmd.Env = append(environ(), o.Env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start genailab up: %w", err)
	}
	s := &Stack{DataDir: o.DataDir, cmd: cmd, out: &tail{max: 400}, exited: make(chan struct{}), Addrs: map[string]string{}, MetricsAddrs: map[string]string{}}
	up := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			s.out.add(line)
			if strings.TrimSpace(line) == upLine {
				once.Do(func() { close(up) })
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	go func() {
		s.err = cmd.Wait()
		pw.Close()
		close(s.exited)
	}()
	timer := time.NewTimer(o.ReadyTimeout)
	defer timer.Stop()
	select {
	case <-up:
	case <-s.exited:
		return nil, fmt.Errorf("genailab up exited before it was ready: %v\n%s", s.err, s.Output())
	case <-timer.C:
		s.Stop()
		return nil, fmt.Errorf("genailab up not ready after %s\n%s", o.ReadyTimeout, s.Output())
	case <-ctx.Done():
		s.Stop()
		return nil, ctx.Err()
	}
	for _, name := range Names {
		b, err := os.ReadFile(filepath.Join(o.DataDir, "run", name+".addr"))
		if err != nil {
			s.Stop()
			return nil, fmt.Errorf("address of %s: %w", name, err)
		}
		s.Addrs[name] = strings.TrimSpace(string(b))
	}
	for _, name := range MetricsNames {
		b, err := os.ReadFile(filepath.Join(o.DataDir, "run", name+"-metrics.addr"))
		if err != nil {
			s.Stop()
			return nil, fmt.Errorf("metrics address of %s: %w", name, err)
		}
		s.MetricsAddrs[name] = strings.TrimSpace(string(b))
	}
	return s, nil
}

// environ is the test's environment without GENAILAB_ settings that would configure the
// stack behind the test's back (the token, addresses); the llama-server path stays.
func environ() []string {
	var out []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "GENAILAB_") && name != llamabin.EnvVar {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// Stop interrupts the launcher (it stops every service and engine) and waits for it,
// killing it after a minute.
func (s *Stack) Stop() error {
	select {
	case <-s.exited:
		return nil
	default:
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.exited:
		return nil
	case <-time.After(time.Minute):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.exited
		return fmt.Errorf("genailab up did not stop within a minute; killed\n%s", s.Output())
	}
}

// Pid is the launcher's process id.
func (s *Stack) Pid() int { return s.cmd.Process.Pid }

// Output returns the last lines the stack printed (for failure messages).
func (s *Stack) Output() string { return s.out.String() }

// tail keeps the last max lines.
type tail struct {
	mu    sync.Mutex
	max   int
	lines []string
}

func (t *tail) add(l string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, l)
	if len(t.lines) > t.max {
		t.lines = t.lines[len(t.lines)-t.max:]
	}
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}

// ImageEngines picks the image engine of a client test's stack: the demo options given when
// forceDemo is set or RealSD finds no real engine, else the real stable-diffusion.cpp. It
// returns the options, the real engine (nil for the demo) and the note to print.
func ImageEngines(forceDemo bool, demo Options) (Options, *testenv.RealSD, string, error) {
	if forceDemo {
		return demo, nil, "images: the demo stand-in (-demo-engines)", nil
	}
	sd, note, err := RealSD()
	if err != nil {
		return Options{}, nil, "", err
	}
	if sd == nil {
		return demo, nil, note, nil
	}
	return Options{SD: sd}, sd, note, nil
}

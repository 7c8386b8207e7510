package main_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/genailab/genailab/clients/go/stacktest"
	"github.com/genailab/genailab/pkg/testenv"
)

// The tests run genaictl, built from this package, as a subprocess against a real stack
// started with `genailab up -ephemeral-ports`: the real llama-server with the tiny
// random-weight model, and the real stable-diffusion.cpp with the tiny random-weight
// diffusion model (stacktest.RealSD) started at boot; where sd.cpp is not found (and
// GENAILAB_REQUIRE_SDCPP is not 1) or with -demo-engines, the sd.cpp stand-in with
// slowed-down steps.

// demoStepMS is the stand-in's time per sampling step (its default is 10 ms): slow enough to
// interrupt a long generation half-way, fast enough for the short ones. The real engine needs
// no such knob: cancelSize and cancelSteps make a generation that lasts.
const demoStepMS = 40

// The sizes of the generations the tests interrupt or queue behind: the real engine takes
// about 0.1-0.3 s a step at 64x64 on two cores and more at 128x128.
const (
	cancelSize  = "128"
	cancelSteps = 60
)

var (
	update      = flag.Bool("update", false, "rewrite the golden files")
	demoEngines = flag.Bool("demo-engines", false, "run the sd.cpp stand-in even when the real stable-diffusion.cpp is found (golden files: the -demo variants)")
	bin         string // directory of genaictl and the stack's binaries
	stack       *stacktest.Stack
	// sd is the real stable-diffusion.cpp the stack runs, nil when it runs the stand-in.
	sd *testenv.RealSD
	// diffusionModel is the id of the diffusion model the stack started at boot.
	diffusionModel = "demo"
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if testing.Short() {
		return m.Run()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	var err error
	opts, found, note, err := stacktest.ImageEngines(*demoEngines,
		stacktest.Options{DemoEngines: true, Env: []string{fmt.Sprintf("SDSTANDIN_STEP_MS=%d", demoStepMS)}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Fprintln(os.Stderr, note)
	sd = found
	diffusionModel = stacktest.DiffusionModelID(sd)
	if bin, err = os.MkdirTemp("", "genaictl-test-bin-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(bin)
	data, err := os.MkdirTemp("", "genaictl-test-data-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(data)
	pkgs := append([]string{"github.com/genailab/genailab/clients/cli/cmd/genaictl"}, stacktest.Packages...)
	if err := stacktest.Build(ctx, bin, pkgs...); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	opts.BinDir, opts.DataDir = bin, data
	stack, err = stacktest.Start(ctx, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	if err := stack.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	if code != 0 {
		fmt.Fprintf(os.Stderr, "--- stack output (tail)\n%s\n", stack.Output())
	}
	return code
}

// result is one run of genaictl.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout\n%s--- stderr\n%s", r.code, r.stdout, r.stderr)
}

// env points genaictl at the test stack through its environment variables.
func env() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GENAILAB_") {
			out = append(out, kv)
		}
	}
	return append(out, "GENAILAB_ADDR="+stack.Addrs["orchestrator"], "GENAILAB_LLM_ADDR="+stack.Addrs["llm"],
		"GENAILAB_DIFFUSION_ADDR="+stack.Addrs["diffusion"], "GENAILAB_MONITOR_ADDR="+stack.Addrs["monitor"])
}

func needStack(t *testing.T) {
	t.Helper()
	if stack == nil {
		t.Skip("needs the real stack (not with -short)")
	}
}

// command prepares genaictl with args, pointed at the stack, in a temporary directory.
func command(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	needStack(t)
	cmd := exec.Command(filepath.Join(bin, "genaictl"), args...)
	cmd.Env = env()
	cmd.Dir = t.TempDir()
	return cmd
}

// ctl runs genaictl to its end (stdin empty, not a terminal).
func ctl(t *testing.T, args ...string) result {
	t.Helper()
	return ctlIn(t, "", args...)
}

func ctlIn(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	cmd := command(t, args...)
	return runCmd(t, cmd, stdin)
}

func runCmd(t *testing.T, cmd *exec.Cmd, stdin string) result {
	t.Helper()
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &out, &errb
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		code := 0
		if err != nil {
			ee, ok := err.(*exec.ExitError)
			if !ok {
				t.Fatalf("genaictl %v: %v", cmd.Args[1:], err)
			}
			code = ee.ExitCode()
		}
		return result{out.String(), errb.String(), code}
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		t.Fatalf("genaictl %v did not end", cmd.Args[1:])
	}
	return result{}
}

// ok runs genaictl and fails the test unless it succeeds.
func ok(t *testing.T, args ...string) result {
	t.Helper()
	r := ctl(t, args...)
	if r.code != 0 {
		t.Fatalf("genaictl %s: %s", strings.Join(args, " "), r)
	}
	return r
}

// fails runs genaictl, expects exit code, and checks the one-line error.
func fails(t *testing.T, code int, wantErr string, args ...string) result {
	t.Helper()
	r := ctl(t, args...)
	if r.code != code {
		t.Fatalf("genaictl %s: exit %d, want %d\n%s", strings.Join(args, " "), r.code, code, r)
	}
	oneLineError(t, r, wantErr)
	return r
}

// oneLineError checks that stderr is one "genaictl: ..." line (plus the usage hint for
// usage errors) containing want, with no Go error plumbing or stack trace in it.
func oneLineError(t *testing.T, r result, want string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
	if r.code == 2 && len(lines) == 2 && lines[1] == "Run 'genaictl --help' for usage." {
		lines = lines[:1]
	}
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "genaictl: ") || !strings.Contains(lines[0], want) {
		t.Errorf("stderr %q: want one line 'genaictl: ...%s...'", r.stderr, want)
	}
	for _, bad := range []string{"rpc error:", "goroutine ", "panic", "desc ="} {
		if strings.Contains(r.stderr, bad) {
			t.Errorf("stderr %q contains %q", r.stderr, bad)
		}
	}
}

// background starts genaictl and returns its command and output buffers (not a terminal).
func background(t *testing.T, args ...string) (*exec.Cmd, *syncBuffer, *syncBuffer) {
	t.Helper()
	cmd := command(t, args...)
	out, errb := &syncBuffer{}, &syncBuffer{}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(""), out, errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd, out, errb
}

// interrupt sends SIGINT (Ctrl-C) to a genaictl started with background and returns its exit code.
func interrupt(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("genaictl did not end after SIGINT")
	}
	return -1
}

// waitFor polls cond until it holds (or fails the test after limit).
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer safe for a writer process and a reading test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

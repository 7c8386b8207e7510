package genailab_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	genailab "github.com/genailab/genailab/clients/go"
	"github.com/genailab/genailab/clients/go/stacktest"
	"github.com/genailab/genailab/pkg/testenv"
)

// demoStepMS slows the sd stand-in's sampling steps (default 10 ms) when the stack runs it
// instead of the real stable-diffusion.cpp, so that a generation can still be cancelled
// half-way; the real engine is slow enough with the sizes the tests use (cancelSize).
const demoStepMS = 60

var (
	// stack is the real genailab stack every test of this package talks to (nil with -short).
	stack *stacktest.Stack
	// sd is the real stable-diffusion.cpp the stack runs, nil when it runs the demo stand-in.
	sd *testenv.RealSD
	// diffusionModel is the id of the diffusion model the stack started at boot.
	diffusionModel = "demo"

	demoEngines = flag.Bool("demo-engines", false, "run the sd.cpp stand-in even when the real stable-diffusion.cpp is found")
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	flag.Parse()
	if testing.Short() {
		return m.Run()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	opts, found, note, err := stacktest.ImageEngines(*demoEngines,
		stacktest.Options{DemoEngines: true, Env: []string{fmt.Sprintf("SDSTANDIN_STEP_MS=%d", demoStepMS)}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Fprintln(os.Stderr, note)
	sd = found
	diffusionModel = stacktest.DiffusionModelID(sd)
	bin, err := os.MkdirTemp("", "genailab-client-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(bin)
	data, err := os.MkdirTemp("", "genailab-client-data-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(data)
	if err := stacktest.Build(ctx, bin, stacktest.Packages...); err != nil {
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

// dial connects to the test stack.
func dial(t *testing.T) *genailab.Client {
	t.Helper()
	if stack == nil {
		t.Skip("needs the real stack (not with -short)")
	}
	c, err := genailab.Dial(genailab.Options{
		Addr:          stack.Addrs["orchestrator"],
		LLMAddr:       stack.Addrs["llm"],
		DiffusionAddr: stack.Addrs["diffusion"],
		MonitorAddr:   stack.Addrs["monitor"],
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func testContext(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

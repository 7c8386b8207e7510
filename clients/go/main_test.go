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
)

// stepMS slows the sd stand-in's sampling steps so that a generation can be cancelled
// half-way; tests keep their step counts small elsewhere.
const stepMS = 60

// stack is the real genailab stack every test of this package talks to (nil with -short).
var stack *stacktest.Stack

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	flag.Parse()
	if testing.Short() {
		return m.Run()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
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
	stack, err = stacktest.Start(ctx, stacktest.Options{BinDir: bin, DataDir: data, DemoEngines: true,
		Env: []string{fmt.Sprintf("SDSTANDIN_STEP_MS=%d", stepMS)}})
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

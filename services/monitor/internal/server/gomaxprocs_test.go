package server

import (
	"context"
	"runtime"
	"testing"

	monitorv1 "github.com/genailab/genailab/gen/monitor/v1"
	"github.com/genailab/genailab/services/monitor/internal/dgxtest"
)

// The command runs the monitor on one P (-gomaxprocs, default 1); Run sets it while it
// runs and gives the runtime its own value back when it returns.
func TestRunSetsGoMaxProcsWhileItRuns(t *testing.T) {
	before := runtime.GOMAXPROCS(0)
	if before < 2 {
		runtime.GOMAXPROCS(2) // so that 1 is a change to see
		t.Cleanup(func() { runtime.GOMAXPROCS(before) })
	}
	outside := runtime.GOMAXPROCS(0)
	h := start(t, Options{NVML: dgxtest.New(), GoMaxProcs: DefaultGoMaxProcs})
	if _, err := h.client.GetUsage(context.Background(), &monitorv1.GetUsageRequest{}); err != nil {
		t.Fatal(err)
	}
	if n := runtime.GOMAXPROCS(0); n != DefaultGoMaxProcs {
		t.Fatalf("GOMAXPROCS %d while Run runs, want %d", n, DefaultGoMaxProcs)
	}
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	if n := runtime.GOMAXPROCS(0); n != outside {
		t.Fatalf("GOMAXPROCS %d after Run returned, want %d back", n, outside)
	}
}

func TestGoMaxProcsFlag(t *testing.T) {
	o, err := parseFlags(t)
	if err != nil || o.GoMaxProcs != DefaultGoMaxProcs {
		t.Fatalf("default: %d, %v; want %d", o.GoMaxProcs, err, DefaultGoMaxProcs)
	}
	if o, err = parseFlags(t, "-gomaxprocs", "0"); err != nil || o.GoMaxProcs != 0 {
		t.Fatalf("-gomaxprocs 0: %d, %v", o.GoMaxProcs, err)
	}
	t.Setenv("GENAILAB_MONITOR_GOMAXPROCS", "4")
	if o, err = parseFlags(t); err != nil || o.GoMaxProcs != 4 {
		t.Fatalf("env: %d, %v", o.GoMaxProcs, err)
	}
	if err := (Options{GoMaxProcs: -1}).Validate(); err == nil {
		t.Fatal("a negative -gomaxprocs is accepted")
	}
}

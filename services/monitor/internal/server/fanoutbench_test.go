package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	monitorv1 "github.com/genailab/genailab/gen/monitor/v1"
	"github.com/genailab/genailab/pkg/grpcserver"
	"github.com/genailab/genailab/pkg/testenv"
	"github.com/genailab/genailab/services/monitor/internal/sampler/samplertest"
)

// monitorHelperEnv makes the test binary run a monitor (Run, the simulated
// DGX of busyDGX, a manual clock) instead of its tests, driven on stdin:
// "tick" ticks the benchInterval sampler, "cpu" prints the process's CPU
// time so far; EOF ends it. Its data directory is the variable's value.
const monitorHelperEnv = "GENAILAB_MONITOR_BENCH_MONITOR"

// monitorProfileEnv, set for the benchmark, names a file for the monitor
// helper's CPU profile.
const monitorProfileEnv = "GENAILAB_MONITOR_BENCH_CPUPROFILE"

// monitorProcsEnv, set for the benchmark, is the monitor helper's
// Options.GoMaxProcs instead of the command's default (0: the runtime's).
const monitorProcsEnv = "GENAILAB_MONITOR_BENCH_GOMAXPROCS"

// maybeMonitorHelper runs the monitor helper and exits if this process was
// started as one; otherwise it returns at once.
func maybeMonitorHelper() {
	dir := os.Getenv(monitorHelperEnv)
	if dir == "" {
		return
	}
	runMonitorHelper(dir)
	os.Exit(0)
}

func runMonitorHelper(dir string) {
	clock := samplertest.NewClock()
	opts := Options{
		NVML: busyDGX(), NewTicker: clock.NewTicker, DataDir: dir, MetricsAddr: MetricsOff,
		GRPC:       grpcserver.Flags{Addr: "127.0.0.1:0", AddrFile: filepath.Join(dir, "addr")},
		GoMaxProcs: DefaultGoMaxProcs, // as the command runs it
	}
	if v := os.Getenv(monitorProcsEnv); v != "" {
		opts.GoMaxProcs, _ = strconv.Atoi(v)
	}
	if path := os.Getenv(monitorProfileEnv); path != "" {
		f, err := os.Create(path)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer func() { pprof.StopCPUProfile(); f.Close() }()
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, opts) }()
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch in.Text() {
		case "tick":
			fmt.Println("tick", clock.Tick(benchInterval))
		case "cpu":
			var ru syscall.Rusage
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
			fmt.Println("cpu", ru.Utime.Nano()+ru.Stime.Nano())
		}
	}
	cancel()
	if err := <-done; err != nil {
		fmt.Fprintln(os.Stderr, "monitor helper:", err)
		return
	}
}

// monitorProcess is a monitor helper process and its control pipes.
type monitorProcess struct {
	addr string
	in   io.Writer
	out  *bufio.Scanner
}

func startMonitorProcess(b *testing.B) *monitorProcess {
	b.Helper()
	dir := b.TempDir()
	h := testenv.StartSelf(b, monitorHelperEnv, dir) // EOF on stdin stops the monitor
	return &monitorProcess{addr: waitFileB(b, filepath.Join(dir, "addr")), in: h.In, out: bufio.NewScanner(h.Out)}
}

// ask sends a command and returns the value of its answer line.
func (p *monitorProcess) ask(b *testing.B, cmd string) string {
	if _, err := fmt.Fprintln(p.in, cmd); err != nil {
		b.Fatal(err)
	}
	if !p.out.Scan() {
		b.Fatalf("monitor helper gone: %v", p.out.Err())
	}
	v, ok := strings.CutPrefix(p.out.Text(), cmd+" ")
	if !ok {
		b.Fatalf("monitor helper answered %q to %q", p.out.Text(), cmd)
	}
	return v
}

func (p *monitorProcess) cpu(b *testing.B) time.Duration {
	ns, err := strconv.ParseInt(p.ask(b, "cpu"), 10, 64)
	if err != nil {
		b.Fatal(err)
	}
	return time.Duration(ns)
}

// BenchmarkWatchUsageFanout is the monitor's own CPU per snapshot with 1
// and with 100 WatchUsage subscribers, the two alternated in every
// iteration: "conns=1" multiplexes the streams on one gRPC connection,
// "conns=100" gives each its own (a panel or an orchestrator each). The
// monitor is a separate process (the test binary re-executed: Run on the
// simulated DGX of busyDGX, real gopsutil, a manual clock ticked over a
// pipe), so the clients' decoding is not counted; its CPU is read with
// getrusage before and after ticksPerPhase snapshots, each one received by
// every subscriber. Reported: CPU µs per snapshot at 1 and at 100, the
// ratio of their medians and the median of the paired ratios (goal ≤ 1.2).
// GENAILAB_MONITOR_BENCH_CPUPROFILE=file profiles the monitor;
// GENAILAB_MONITOR_BENCH_GOMAXPROCS=n runs it with -gomaxprocs n instead of
// the command's default.
//
//	go test -run '^$' -bench WatchUsageFanout -benchtime 10x ./internal/server
func BenchmarkWatchUsageFanout(b *testing.B) {
	for _, nconns := range []int{1, 100} {
		b.Run(fmt.Sprintf("conns=%d", nconns), func(b *testing.B) { benchFanout(b, nconns) })
	}
}

func benchFanout(b *testing.B, nconns int) {
	mon := startMonitorProcess(b)
	conns := make([]monitorv1.MonitorServiceClient, nconns)
	for i := range conns {
		conn, err := grpc.NewClient(mon.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		conns[i] = monitorv1.NewMonitorServiceClient(conn)
	}
	const ticksPerPhase = 20
	var msgBytes atomic.Int64 // the size of a WatchUsageResponse
	// phase opens n streams, waits for their first snapshot, then measures
	// the monitor's CPU over ticksPerPhase more.
	phase := func(n int) time.Duration {
		ctx, cancel := context.WithCancel(context.Background())
		got := make(chan error, n)
		var wg sync.WaitGroup
		for i := range n {
			s, err := conns[i%len(conns)].WatchUsage(ctx, &monitorv1.WatchUsageRequest{IntervalMs: benchInterval.Milliseconds()})
			if err != nil {
				b.Fatal(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					r, err := s.Recv()
					if err != nil {
						if ctx.Err() == nil {
							got <- err
						}
						return
					}
					msgBytes.Store(int64(proto.Size(r)))
					got <- nil
				}
			}()
		}
		wait := func() {
			for range n {
				if err := <-got; err != nil {
					b.Fatal(err)
				}
			}
		}
		wait()
		c0 := mon.cpu(b)
		for range ticksPerPhase {
			if ok := mon.ask(b, "tick"); ok != "true" {
				b.Fatal("the monitor's sampler was not running")
			}
			wait()
		}
		c1 := mon.cpu(b)
		cancel()
		wg.Wait()
		return (c1 - c0) / ticksPerPhase
	}
	var one, hundred []time.Duration
	i := 0
	for b.Loop() {
		if i%2 == 0 {
			one = append(one, phase(1))
			hundred = append(hundred, phase(100))
		} else {
			hundred = append(hundred, phase(100))
			one = append(one, phase(1))
		}
		i++
	}
	med := func(ds []time.Duration) time.Duration {
		s := slices.Clone(ds)
		slices.Sort(s)
		return s[len(s)/2]
	}
	pairs := make([]float64, len(one))
	for i := range one {
		pairs[i] = float64(hundred[i]) / float64(one[i])
	}
	slices.Sort(pairs)
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	b.ReportMetric(us(med(one)), "cpu-µs/snapshot@1")
	b.ReportMetric(us(med(hundred)), "cpu-µs/snapshot@100")
	b.ReportMetric(float64(med(hundred))/float64(med(one)), "ratio-median")
	b.ReportMetric(pairs[len(pairs)/2], "ratio-paired-median")
	b.ReportMetric(float64(msgBytes.Load()), "bytes/message")
	b.Logf("n=%d: 1 subscriber %.0f µs, 100 subscribers %.0f µs CPU per snapshot; paired ratio median %.2f",
		len(one), us(med(one)), us(med(hundred)), pairs[len(pairs)/2])
}

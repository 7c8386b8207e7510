package server

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"google.golang.org/grpc"

	monitorv1 "github.com/genailab/genailab/gen/monitor/v1"
	"github.com/genailab/genailab/services/monitor/internal/dgxtest"
	"github.com/genailab/genailab/services/monitor/internal/sampler/samplertest"
)

// busyDGX is a DGX A100 whose GPUs each list many (foreign) processes, so
// that every snapshot is a few kilobytes and a stalled stream fills gRPC's
// flow-control window within a few dozen snapshots.
func busyDGX() *dgxtest.Machine {
	m := dgxtest.New()
	for i := range dgxtest.GPUs {
		var procs []nvml.ProcessInfo
		for p := range 24 {
			procs = append(procs, nvml.ProcessInfo{Pid: uint32(3_000_000 + 100*i + p), UsedGpuMemory: 256 << 20})
		}
		m.Set(i, dgxtest.GPU{UsedBytes: 7 * gib, TemperatureC: 50, PowerMW: 200_000, PowerLimitMW: 400_000, Compute: procs})
	}
	return m
}

// TestWatchUsageHundredSubscribersOneStalled opens 100 WatchUsage streams
// at one interval over real loopback gRPC. One client never reads. The
// sampler is driven by a manual clock: after each tick the test waits
// until the 99 reading clients have the new snapshot, so "keeping their
// rate" is exact — every one of them gets every snapshot, none missed —
// while the stalled stream, once its flow-control window is full, skips
// snapshots and is told how many.
func TestWatchUsageHundredSubscribersOneStalled(t *testing.T) {
	const (
		streams  = 100
		interval = 100 * time.Millisecond
		maxTicks = 2000
	)
	clock := samplertest.NewClock()
	// A fixed 64 KiB stream window (no BDP growth) makes the stall point
	// deterministic; the connection window is large so that the stalled
	// stream cannot hold the others back at connection level.
	h := start(t, Options{NVML: busyDGX(), NewTicker: clock.NewTicker},
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<20))
	ctx := context.Background()
	if _, err := h.client.GetUsage(ctx, &monitorv1.GetUsageRequest{}); err != nil {
		t.Fatal(err)
	}
	baseline := runtime.NumGoroutine()

	watchCtx, cancelWatch := context.WithCancel(ctx)
	stalled, err := h.client.WatchUsage(watchCtx, &monitorv1.WatchUsageRequest{IntervalMs: interval.Milliseconds()})
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg       sync.WaitGroup
		received [streams - 1]atomic.Int64
		missed   atomic.Uint64
	)
	for i := range streams - 1 {
		s, err := h.client.WatchUsage(watchCtx, &monitorv1.WatchUsageRequest{IntervalMs: interval.Milliseconds()})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				r, err := s.Recv()
				if err != nil {
					return
				}
				missed.Add(r.GetMissed())
				received[i].Add(1)
			}
		}()
	}
	allHave := func(n int64) func() bool {
		return func() bool {
			for i := range received {
				if received[i].Load() < n {
					return false
				}
			}
			return true
		}
	}
	// Every stream subscribed (100 + the history recorder) and got the
	// sampler's first snapshot.
	waitFor(t, "100 subscribers", func() bool {
		v, _ := gauge(h.scrape(t), "genailab_monitor_watch_subscribers", nil)
		return v == streams+1
	})
	waitFor(t, "first snapshot", allHave(1))

	samples := int64(1)
	missedTotal := func() float64 {
		v, _ := gauge(h.scrape(t), "genailab_monitor_watch_missed_snapshots_total", nil)
		return v
	}
	// Tick until the stalled stream has skipped snapshots, then 5 more.
	extra := -1
	for extra != 0 {
		if samples > maxTicks {
			t.Fatalf("stalled stream never missed a snapshot in %d ticks", maxTicks)
		}
		if !clock.Tick(interval) {
			t.Fatal("no sampler for the interval")
		}
		samples++
		waitFor(t, "tick to reach every reading client", allHave(samples))
		switch {
		case extra > 0:
			extra--
		case samples%4 == 0 && missedTotal() > 0: // scraping is costly: not every tick
			extra = 5
		}
	}

	for i := range received {
		if n := received[i].Load(); n != samples {
			t.Fatalf("client %d received %d snapshots, want all %d", i, n, samples)
		}
	}
	if missed.Load() != 0 {
		t.Fatalf("reading clients were told they missed %d", missed.Load())
	}
	// The stalled client now reads: what it receives plus what it is told
	// it missed accounts for every snapshot the sampler took.
	var got, skipped uint64
	for got+skipped < uint64(samples) {
		r, err := stalled.Recv()
		if err != nil {
			t.Fatalf("stalled stream after %d+%d of %d: %v", got, skipped, samples, err)
		}
		got++
		skipped += r.GetMissed()
	}
	if got+skipped != uint64(samples) || skipped == 0 || skipped != uint64(missedTotal()) {
		t.Fatalf("stalled stream: received %d, missed %d, of %d samples (server counted %v missed)",
			got, skipped, samples, missedTotal())
	}
	t.Logf("%d samples: 99 clients got all; stalled client got %d and missed %d", samples, got, skipped)

	// Cancelling the streams frees everything: the sampler stops, and
	// every goroutine the streams used is gone.
	cancelWatch()
	wg.Wait()
	waitFor(t, "subscribers gone", func() bool {
		fams := h.scrape(t)
		subs, _ := gauge(fams, "genailab_monitor_watch_subscribers", nil)
		samplers, _ := gauge(fams, "genailab_monitor_samplers", nil)
		return subs == 1 && samplers == 1 // the history's own
	})
	waitFor(t, "100 ms ticker stopped", func() bool { return !clock.Running(interval) })
	deadline := time.Now().Add(30 * time.Second)
	for runtime.NumGoroutine() > baseline {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, baseline %d:\n%s", runtime.NumGoroutine(), baseline, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

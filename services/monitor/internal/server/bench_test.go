package server

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	monitorv1 "github.com/genailab/genailab/gen/monitor/v1"
	"github.com/genailab/genailab/pkg/grpcserver"
	"github.com/genailab/genailab/services/monitor/internal/sampler/samplertest"
)

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

const benchInterval = 100 * time.Millisecond

// BenchmarkSamplerFanout is one sampler tick — a full sampling pass (real
// gopsutil, eight simulated A100s), its conversion to the API form, and
// delivery to every subscriber, each of which takes the value — with 1 and
// with 100 subscribers. The ratio of their cpu-ns/op is the fan-out's cost.
func BenchmarkSamplerFanout(b *testing.B) {
	for _, subs := range []int{1, 100} {
		b.Run(fmt.Sprintf("subscribers=%d", subs), func(b *testing.B) {
			clock := samplertest.NewClock()
			m, err := NewMonitor(Options{NVML: busyDGX(), NewTicker: clock.NewTicker, DataDir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			got := make(chan struct{}, subs)
			for range subs {
				sub, err := m.hub.Subscribe(benchInterval)
				if err != nil {
					b.Fatal(err)
				}
				defer sub.Cancel()
				go func() {
					for {
						if _, err := sub.Next(ctx); err != nil {
							return
						}
						got <- struct{}{}
					}
				}()
			}
			for range subs { // the first value, taken when the sampler starts
				<-got
			}
			b.ResetTimer()
			start := cpuTime(b)
			for b.Loop() {
				clock.Tick(benchInterval)
				for range subs {
					<-got
				}
			}
			b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/op")
		})
	}
}

// BenchmarkWatchUsageGRPC is the same tick with 1 and with 100 WatchUsage
// streams over loopback gRPC, client included: each stream marshals,
// sends and the client unmarshals every snapshot, so unlike the sampler's
// own work this part grows with the number of streams.
func BenchmarkWatchUsageGRPC(b *testing.B) {
	for _, streams := range []int{1, 100} {
		b.Run(fmt.Sprintf("streams=%d", streams), func(b *testing.B) {
			clock := samplertest.NewClock()
			dir := b.TempDir()
			opts := Options{
				NVML: busyDGX(), NewTicker: clock.NewTicker, DataDir: dir, MetricsAddr: MetricsOff,
				GRPC: grpcserver.Flags{Addr: "127.0.0.1:0", AddrFile: filepath.Join(dir, "addr")},
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- Run(ctx, opts) }()
			var closing atomic.Bool
			defer func() { closing.Store(true); cancel(); <-done }()
			addr := waitFileB(b, opts.GRPC.AddrFile)
			conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				b.Fatal(err)
			}
			defer func() { closing.Store(true); conn.Close() }()
			client := monitorv1.NewMonitorServiceClient(conn)
			got := make(chan struct{}, streams)
			for range streams {
				s, err := client.WatchUsage(ctx, &monitorv1.WatchUsageRequest{IntervalMs: benchInterval.Milliseconds()})
				if err != nil {
					b.Fatal(err)
				}
				go func() {
					for {
						if _, err := s.Recv(); err != nil {
							if err != io.EOF && !closing.Load() {
								b.Error(err)
							}
							return
						}
						got <- struct{}{}
					}
				}()
			}
			for range streams {
				<-got
			}
			b.ResetTimer()
			start := cpuTime(b)
			for b.Loop() {
				clock.Tick(benchInterval)
				for range streams {
					<-got
				}
			}
			b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/op")
		})
	}
}

func waitFileB(b *testing.B, path string) string {
	b.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if data, err := os.ReadFile(path); err == nil && len(data) > 0 {
			return string(data)
		}
	}
	b.Fatalf("no address in %s", path)
	return ""
}

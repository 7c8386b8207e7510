package telemetry

import (
	"context"
	"log/slog"
	"syscall"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/genailab/genailab/services/monitor/internal/dgxtest"
)

// cpuTime is this process's user+system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSamplingPass is one snapshot: CPU, memory, swap, disk and the
// process table through gopsutil, and either eight simulated A100s (go-nvml's
// mock: NVML's own cost is not included) or no NVML. cpu-ns/op is the CPU
// time the pass costs; at 1 Hz, cpu-ns/op / 1e9 is the share of one core.
func BenchmarkSamplingPass(b *testing.B) {
	for _, c := range []struct {
		name string
		lib  func() NVMLLibrary
	}{
		{"gpus=none", func() NVMLLibrary { return nil }},
		{"gpus=dgxa100", func() NVMLLibrary {
			m := dgxtest.New()
			for i := range dgxtest.GPUs {
				m.Set(i, dgxtest.GPU{UsedBytes: 9 << 30, Compute: []nvml.ProcessInfo{{Pid: uint32(4_000_000 + i), UsedGpuMemory: 8 << 30}}})
			}
			return m
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			log := slog.New(slog.DiscardHandler)
			gpus := OpenGPUs(c.lib(), "", log)
			defer gpus.Close()
			coll := NewCollector(NewHost(b.TempDir()), gpus, NewProcessTable(DefaultManagedNames(), nil), log)
			s := coll.NewStream()
			ctx := context.Background()
			s.Next(ctx) // warm the process-name cache, as a running sampler has
			b.ReportAllocs()
			b.ResetTimer()
			start := cpuTime(b)
			for b.Loop() {
				s.Next(ctx)
			}
			b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/op")
		})
	}
}

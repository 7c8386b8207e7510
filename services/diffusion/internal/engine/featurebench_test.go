package engine

// Issue 18's benchmarks on the real stable-diffusion.cpp (skipped without it; run with
// `go test -run '^$' -bench RealFeature -benchtime 3x ./internal/engine/`). Each reports ratios
// against a baseline measured in the same run, the variants alternated (their order rotated
// every iteration), plus the latency of a preview from the engine writing the file (its
// modification time) to the service's sink receiving it downscaled.

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/genailab/genailab/pkg/imagereq"
	"github.com/genailab/genailab/pkg/testenv"
	"github.com/genailab/genailab/services/diffusion/internal/sdargs"
)

func startRealTB(tb testing.TB, mode Mode) *Engine {
	tb.Helper()
	sd := testenv.RequireRealSD(tb)
	e := New(Options{
		Binaries:     Binaries{CLI: sd.CLI, Server: sd.Server, LookPath: noPath},
		TempDir:      tb.TempDir(),
		StallTimeout: 120 * time.Second,
	})
	tb.Cleanup(func() { _ = e.Close(context.Background()) })
	if _, err := e.Start(context.Background(), Config{Mode: mode, ModelID: "tinysd", Model: sdargs.Model{Path: sd.Model}, Threads: 1}); err != nil {
		tb.Fatalf("start real %s engine: %v", mode, err)
	}
	return e
}

// latencies collects preview latencies (engine wrote the file → sink got the preview).
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
	// read is the part from the file's mtime to the service reading it (the engine printing
	// its step bar, the pipe, the parser, a stat and a read).
	read []time.Duration
}

func (l *latencies) sink(p Progress) {
	if p.Preview == nil {
		return
	}
	d := time.Since(p.Preview.Written)
	l.mu.Lock()
	l.d = append(l.d, d)
	l.read = append(l.read, p.Preview.Read.Sub(p.Preview.Written))
	l.mu.Unlock()
}

func quantileOf(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(int(q*float64(len(s))), len(s)-1)]
}

func (l *latencies) quantile(q float64) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return quantileOf(l.d, q)
}

func BenchmarkRealFeaturePreviewOverhead(b *testing.B) {
	e := startRealTB(b, ModeCLI)
	variants := []string{"none", "proj", "tae"}
	total := map[string]time.Duration{}
	var lat, first latencies
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		for k := range variants {
			v := variants[(i+k)%len(variants)]
			p := imagereq.Params{Prompt: "a red fox", Width: 256, Height: 256, Steps: 10, CFGScale: 7.5, Seed: 42, Sampler: "euler_a", N: 1}
			var sink ProgressFunc
			if v != "none" {
				p.Preview = imagereq.Preview{Method: v, Interval: 1}
				seen := false
				sink = func(pr Progress) {
					lat.sink(pr)
					if pr.Preview != nil && !seen {
						seen = true
						first.sink(pr)
					}
				}
			}
			start := time.Now()
			if _, err := e.Generate(ctx, p, sink); err != nil {
				b.Fatal(err)
			}
			total[v] += time.Since(start)
		}
	}
	for _, v := range variants[1:] {
		b.ReportMetric(float64(total[v])/float64(total["none"]), v+"/none")
	}
	b.ReportMetric(float64(total["none"].Milliseconds())/float64(b.N), "ms/image-none")
	b.ReportMetric(float64(lat.quantile(0.5).Microseconds())/1000, "ms-preview-p50")
	b.ReportMetric(float64(lat.quantile(0.99).Microseconds())/1000, "ms-preview-p99")
	b.ReportMetric(float64(first.quantile(0.99).Microseconds())/1000, "ms-first-preview-p99")
	lat.mu.Lock()
	b.ReportMetric(float64(quantileOf(lat.read, 0.5).Microseconds())/1000, "ms-to-read-p50")
	b.ReportMetric(float64(quantileOf(lat.read, 0.99).Microseconds())/1000, "ms-to-read-p99")
	b.Logf("%d previews measured", len(lat.d))
	lat.mu.Unlock()
}

func BenchmarkRealFeatureBatch4VsSingles(b *testing.B) {
	for _, mode := range modes {
		b.Run(mode.String(), func(b *testing.B) {
			e := startRealTB(b, mode)
			ctx := context.Background()
			base := imagereq.Params{Prompt: "a red fox", Width: 64, Height: 64, Steps: 4, CFGScale: 7.5, Seed: 100, Sampler: "euler_a", N: 1}
			if _, err := e.Generate(ctx, base, nil); err != nil { // sd-server loads its weights on the first job
				b.Fatal(err)
			}
			var batch, singles time.Duration
			run := func(p imagereq.Params) time.Duration {
				start := time.Now()
				res, err := e.Generate(ctx, p, nil)
				if err != nil {
					b.Fatal(err)
				}
				if len(res.Batch) != p.N-1 {
					b.Fatalf("batch of %d returned %d more images", p.N, len(res.Batch))
				}
				return time.Since(start)
			}
			for i := 0; b.Loop(); i++ {
				four := base
				four.N = 4
				doSingles := func() {
					for s := range 4 {
						one := base
						one.Seed += int64(s)
						singles += run(one)
					}
				}
				if i%2 == 0 {
					batch += run(four)
					doSingles()
				} else {
					doSingles()
					batch += run(four)
				}
			}
			b.ReportMetric(float64(batch)/float64(singles), "batch4/4singles")
			b.ReportMetric(float64(batch.Milliseconds())/float64(b.N), "ms/batch4")
		})
	}
}

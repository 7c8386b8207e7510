package server

// Benchmarks on the real stable-diffusion.cpp (skipped without it, like every real-engine test;
// run with `go test -run '^$' -bench Real -benchtime 5x ./internal/server/`). Each reports a ratio
// against a baseline measured in the same run, the two alternated.

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	"github.com/genailab/genailab/pkg/imagereq"
	"github.com/genailab/genailab/pkg/testenv"
	"github.com/genailab/genailab/services/diffusion/internal/sdargs"
	"github.com/genailab/genailab/services/diffusion/internal/sdcli"
)

// The relay: this test binary re-executed as "sd-cli" runs the real sd-cli (relayEnv) with the
// same arguments, copies its output through, and records the wall-clock time just before it
// writes each chunk that holds a step bar, so that "engine printed the step" → "gRPC client got
// it" is measured across processes on one clock. The relay's own pipe hop is outside the span.
const (
	relayEnv      = "DIFFUSION_BENCH_RELAY_SDCLI"
	relayTimesEnv = "DIFFUSION_BENCH_RELAY_TIMES"
)

func relaySDCLI() {
	real := os.Getenv(relayEnv)
	if real == "" {
		return
	}
	cmd := exec.Command(real, os.Args[1:]...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		os.Exit(127)
	}
	if err := cmd.Start(); err != nil {
		os.Exit(127)
	}
	var times []int64
	buf := make([]byte, 32<<10)
	for {
		n, rerr := out.Read(buf)
		if n > 0 {
			bars := bytes.Count(buf[:n], []byte("it/s\x1b[K")) + bytes.Count(buf[:n], []byte("s/it\x1b[K"))
			if bytes.Contains(buf[:n], []byte("MB/s")) || bytes.Contains(buf[:n], []byte("GB/s")) {
				bars = 0 // weight-loading bars are not steps (and never share a chunk with one here)
			}
			now := time.Now().UnixNano()
			for range bars {
				times = append(times, now)
			}
			_, _ = os.Stdout.Write(buf[:n])
		}
		if rerr != nil {
			break
		}
	}
	code := 0
	if err := cmd.Wait(); err != nil {
		code = 1
		if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() > 0 {
			code = ee.ExitCode()
		}
	}
	var tb bytes.Buffer
	for _, t := range times {
		tb.WriteString(strconv.FormatInt(t, 10) + "\n")
	}
	_ = os.WriteFile(os.Getenv(relayTimesEnv), tb.Bytes(), 0o644)
	os.Exit(code)
}

func median(d []time.Duration) time.Duration { return percentile(d, 0.5) }

// BenchmarkRealStepLatency: engine step line → gRPC client progress event, real sd-cli (64x64,
// 30 steps per image), p50/p99 over every step of every iteration.
func BenchmarkRealStepLatency(b *testing.B) {
	sd := testenv.RequireRealSD(b)
	dir := b.TempDir()
	times := filepath.Join(dir, "times")
	s := startRealService(b, func(o *Options) {
		o.SDCLI = os.Args[0]
		o.Env = []string{relayEnv + "=" + sd.CLI, relayTimesEnv + "=" + times}
	})
	s.startRealB(b, diffusionv1.EngineMode_ENGINE_MODE_CLI)
	ctx := context.Background()
	const steps = 30
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		recv := map[int32]int64{}
		g := generate(ctx, s.client, &diffusionv1.ImageParams{Prompt: "x", Width: proto.Int32(64), Height: proto.Int32(64), Steps: proto.Int32(steps), Seed: ptr(int64(i))},
			func(p *diffusionv1.Progress) {
				if _, seen := recv[p.Step]; !seen && p.Stage == diffusionv1.Stage_STAGE_SAMPLING && p.Step > 0 {
					recv[p.Step] = time.Now().UnixNano()
				}
			})
		if g.err != nil {
			b.Fatal(g.err)
		}
		printed := readTimes(b, times)
		if len(printed) != steps || len(recv) != steps {
			b.Fatalf("printed %d step bars, client got %d distinct steps, want %d", len(printed), len(recv), steps)
		}
		for step, at := range recv {
			lat = append(lat, time.Duration(at-printed[step-1]))
		}
	}
	b.StopTimer()
	p50, p99 := percentile(lat, 0.5), percentile(lat, 0.99)
	b.ReportMetric(float64(p50.Microseconds()), "p50-µs")
	b.ReportMetric(float64(p99.Microseconds()), "p99-µs")
	b.Logf("real sd-cli step → gRPC client: p50 %s p99 %s over %d steps", p50, p99, len(lat))
}

// BenchmarkRealServiceVsDirectCLI: one 128x128 8-step image through the diffusion service (gRPC,
// CLI mode) ÷ the same sd-cli command run directly; alternated, medians.
func BenchmarkRealServiceVsDirectCLI(b *testing.B) {
	sd := testenv.RequireRealSD(b)
	s := startRealService(b, nil)
	s.startRealB(b, diffusionv1.EngineMode_ENGINE_MODE_CLI)
	ctx := context.Background()
	dir := b.TempDir()
	var svc, direct []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		seed := int64(100 + i)
		t0 := time.Now()
		p := imagereq.Params{Prompt: "a red fox", Width: 128, Height: 128, Steps: 8, CFGScale: 7.5, Seed: seed, Sampler: "euler_a"}
		out := filepath.Join(dir, "direct.png")
		cmd := exec.Command(sd.CLI, sdcli.Args(sdargs.Model{Path: sd.Model}, sdargs.Memory{}, 1, p, out)...)
		cmd.Dir = dir
		if o, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("sd-cli: %v\n%s", err, o)
		}
		if _, err := os.ReadFile(out); err != nil {
			b.Fatal(err)
		}
		direct = append(direct, time.Since(t0))

		t0 = time.Now()
		g := generate(ctx, s.client, &diffusionv1.ImageParams{Prompt: "a red fox", Width: proto.Int32(128), Height: proto.Int32(128), Steps: proto.Int32(8), Seed: ptr(seed)}, nil)
		if g.err != nil {
			b.Fatal(g.err)
		}
		svc = append(svc, time.Since(t0))
	}
	b.StopTimer()
	ratio := float64(median(svc)) / float64(median(direct))
	b.ReportMetric(ratio, "service/direct")
	b.ReportMetric(float64(median(svc).Milliseconds()), "service-ms")
	b.ReportMetric(float64(median(direct).Milliseconds()), "direct-ms")
	b.Logf("128x128 8 steps: service %s, sd-cli direct %s (medians of %d alternated pairs): %.3f×", median(svc), median(direct), len(svc), ratio)
}

// BenchmarkRealServerVsCLIFiveImages: five 128x128 8-step images in server mode (the model
// loaded once) ÷ five in CLI mode (loaded per image); alternated rounds, medians.
func BenchmarkRealServerVsCLIFiveImages(b *testing.B) {
	cli := startRealService(b, nil)
	cli.startRealB(b, diffusionv1.EngineMode_ENGINE_MODE_CLI)
	srv := startRealService(b, nil)
	srv.startRealB(b, diffusionv1.EngineMode_ENGINE_MODE_SERVER)
	ctx := context.Background()
	five := func(s *service, round int) time.Duration {
		t0 := time.Now()
		for k := 0; k < 5; k++ {
			g := generate(ctx, s.client, &diffusionv1.ImageParams{Prompt: "a red fox", Width: proto.Int32(128), Height: proto.Int32(128), Steps: proto.Int32(8), Seed: ptr(int64(round*5 + k))}, nil)
			if g.err != nil {
				b.Fatal(g.err)
			}
		}
		return time.Since(t0)
	}
	five(srv, -1) // sd-server loads its weights on its first job: count the steady state
	var inServer, inCLI []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		inCLI = append(inCLI, five(cli, i))
		inServer = append(inServer, five(srv, i))
	}
	b.StopTimer()
	ratio := float64(median(inServer)) / float64(median(inCLI))
	saved := (median(inCLI) - median(inServer)) / 5
	b.ReportMetric(ratio, "server/cli")
	b.ReportMetric(float64(saved.Milliseconds()), "saved-ms/image")
	b.Logf("five images: server mode %s, CLI mode %s (medians of %d alternated rounds): %.3f×, %s saved per image (the load)", median(inServer), median(inCLI), len(inCLI), ratio, saved)
}

func (s *service) startRealB(b *testing.B, mode diffusionv1.EngineMode) {
	b.Helper()
	if _, err := s.client.Start(context.Background(), &diffusionv1.StartRequest{Config: &diffusionv1.DiffusionConfig{Mode: mode, ModelId: realModelID, Threads: 1}}); err != nil {
		b.Fatal(err)
	}
}

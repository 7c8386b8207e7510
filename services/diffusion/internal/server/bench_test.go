package server

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	"github.com/genailab/genailab/pkg/grpcserver"
	"github.com/genailab/genailab/pkg/modelstore"
	"github.com/genailab/genailab/services/diffusion/internal/engine"
)

// The benchmark's engine is this test binary re-executed as a minimal sd-cli (fakeSDCLI): it
// prints the real byte format and records, for every step bar, the wall-clock time just before
// the write, so that the latency from "printed" to "received by the gRPC client" can be measured
// across processes on one clock.
const (
	fakeEnv      = "DIFFUSION_BENCH_FAKE_SDCLI"
	fakeTimesEnv = "DIFFUSION_BENCH_TIMES"
	fakeStepEnv  = "DIFFUSION_BENCH_STEP_US"
)

// fakeSDCLI runs the fake when asked and reports whether it did.
func fakeSDCLI() bool {
	if os.Getenv(fakeEnv) != "1" {
		return false
	}
	args := map[string]string{}
	for i := 1; i+1 < len(os.Args); i++ {
		if strings.HasPrefix(os.Args[i], "-") {
			args[os.Args[i]] = os.Args[i+1]
		}
	}
	w, _ := strconv.Atoi(args["-W"])
	h, _ := strconv.Atoi(args["-H"])
	steps, _ := strconv.Atoi(args["--steps"])
	stepUS, _ := strconv.Atoi(os.Getenv(fakeStepEnv))
	out := os.Stdout
	logf := func(format string, a ...any) {
		fmt.Fprintf(out, "[INFO ] stable-diffusion.cpp:1    - "+format+"\n", a...)
	}
	logf("loading model from '%s'", args["-m"])
	logf("generate_image %dx%d", w, h)
	logf("sampling using Euler A method")
	logf("generating image: 1/1 - seed %s", args["-s"])
	times := make([]int64, 0, steps)
	for k := 1; k <= steps; k++ {
		time.Sleep(time.Duration(stepUS) * time.Microsecond)
		cells := k * 50 / steps
		bar := strings.Repeat("=", cells) + strings.Repeat(" ", 50-cells)
		if cells < 50 {
			bar = strings.Repeat("=", cells) + ">" + strings.Repeat(" ", 49-cells)
		}
		line := fmt.Sprintf("\r  |%s| %d/%d - %.2fit/s\x1b[K", bar, k, steps, 1e6/float64(max(stepUS, 1)))
		if k == steps {
			line += "\n"
		}
		times = append(times, time.Now().UnixNano())
		_, _ = out.WriteString(line)
	}
	logf("sampling completed, taking 0.01s")
	logf("decoding 1 latents")
	logf("decode_first_stage completed, taking 0.01s")
	logf("generate_image completed in 0.10s")
	var buf bytes.Buffer
	_ = png.Encode(&buf, image.NewGray(image.Rect(0, 0, w, h)))
	_ = os.WriteFile(args["-o"], buf.Bytes(), 0o644)
	logf("save result image 0 to '%s' (success)", args["-o"])
	var tb strings.Builder
	for _, t := range times {
		tb.WriteString(strconv.FormatInt(t, 10) + "\n")
	}
	_ = os.WriteFile(os.Getenv(fakeTimesEnv), []byte(tb.String()), 0o644)
	return true
}

func readTimes(b *testing.B, path string) []int64 {
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	var out []int64
	for _, f := range strings.Fields(string(data)) {
		v, _ := strconv.ParseInt(f, 10, 64)
		out = append(out, v)
	}
	return out
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

const benchSteps = 100
const benchStepUS = 3000

// BenchmarkStepLatency measures the time from the engine writing a step bar to the gRPC client
// receiving that step's Progress (over loopback TCP), against a baseline measured in the same
// run: the same process's bar read straight from its stdout pipe.
func BenchmarkStepLatency(b *testing.B) {
	dir := b.TempDir()
	times := filepath.Join(dir, "times")
	store, err := modelstore.Open(modelstore.Options{DataDir: filepath.Join(dir, "data"), Type: modelstore.TypeDiffusion})
	if err != nil {
		b.Fatal(err)
	}
	eng := engine.New(engine.Options{
		Binaries: engine.Binaries{CLI: os.Args[0]},
		TempDir:  dir,
		Env:      []string{fakeEnv + "=1", fakeTimesEnv + "=" + times, fakeStepEnv + "=" + strconv.Itoa(benchStepUS)},
	})
	defer eng.Close(context.Background())
	srv, err := grpcserver.Listen(grpcserver.Options{Addr: "127.0.0.1:0"})
	if err != nil {
		b.Fatal(err)
	}
	NewService(eng, &models{store: store, demoDir: filepath.Join(dir, "demo"), demoCLI: func() (string, error) { return bins.CLI, nil }}, nil).Register(srv.GRPC())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.Serve(ctx)
	cc, err := grpc.NewClient(srv.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Close()
	client := diffusionv1.NewDiffusionServiceClient(cc)
	if _, err := client.Start(ctx, &diffusionv1.StartRequest{Config: &diffusionv1.DiffusionConfig{ModelId: DemoModelID}}); err != nil {
		b.Fatal(err)
	}

	var lat, base []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Through the service.
		recv := map[int32]int64{}
		g := generate(ctx, client, &diffusionv1.ImageParams{Prompt: "x", Width: proto.Int32(64), Height: proto.Int32(64), Steps: proto.Int32(benchSteps), Seed: ptr(int64(1))},
			func(p *diffusionv1.Progress) {
				if _, seen := recv[p.Step]; !seen && p.Stage == diffusionv1.Stage_STAGE_SAMPLING {
					recv[p.Step] = time.Now().UnixNano()
				}
			})
		if g.err != nil {
			b.Fatal(g.err)
		}
		printed := readTimes(b, times)
		for step, at := range recv {
			if step >= 1 && int(step) <= len(printed) {
				lat = append(lat, time.Duration(at-printed[step-1]))
			}
		}
		// Baseline: the same process, its stdout read directly.
		base = append(base, pipeLatencies(b, dir, times)...)
	}
	b.StopTimer()
	p50, p99 := percentile(lat, 0.5), percentile(lat, 0.99)
	b50, b99 := percentile(base, 0.5), percentile(base, 0.99)
	b.ReportMetric(float64(p50.Microseconds()), "p50-µs")
	b.ReportMetric(float64(p99.Microseconds()), "p99-µs")
	b.ReportMetric(float64(b99.Microseconds()), "pipe-p99-µs")
	if b99 > 0 {
		b.ReportMetric(float64(p99)/float64(b99), "p99/pipe-p99")
	}
	b.Logf("step→gRPC client: p50 %s p99 %s over %d steps; baseline (raw stdout pipe) p50 %s p99 %s over %d", p50, p99, len(lat), b50, b99, len(base))
}

// pipeLatencies runs the fake once with a plain pipe and returns, per step, the time from its
// write to this process reading the bar's ESC[K.
func pipeLatencies(b *testing.B, dir, times string) []time.Duration {
	out := filepath.Join(dir, "base.png")
	cmd := exec.Command(os.Args[0], "-m", "x", "-W", "64", "-H", "64", "--steps", strconv.Itoa(benchSteps), "-s", "1", "-o", out)
	cmd.Env = append(os.Environ(), fakeEnv+"=1", fakeTimesEnv+"="+times, fakeStepEnv+"="+strconv.Itoa(benchStepUS))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	var recv []int64
	r := bufio.NewReaderSize(stdout, 1<<16)
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		now := time.Now().UnixNano()
		for range bytes.Count(buf[:n], []byte("\x1b[K")) {
			recv = append(recv, now)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	if err := cmd.Wait(); err != nil {
		b.Fatal(err)
	}
	printed := readTimes(b, times)
	var d []time.Duration
	for i := range min(len(recv), len(printed)) {
		d = append(d, time.Duration(recv[i]-printed[i]))
	}
	return d
}

package server_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	"github.com/genailab/genailab/pkg/llamabin"
	"github.com/genailab/genailab/pkg/ports"
)

// BenchmarkStartReady compares, on the same model in the same run, a start
// through the service (gRPC Start until it returns ready) with a bare
// llama-server start (exec, then GET /health every millisecond until the
// first 200). The two alternate in each iteration. Reported: the mean of
// each in ms, and service/bare for means, medians and the median of the
// per-iteration ratios (goal ≤ 1.02); as diagnostics, the median time the
// call spends outside llama-server's own start (resolution, launch, gRPC)
// and from the "listening on" line to the caller having its answer.
func BenchmarkStartReady(b *testing.B) {
	h := newHarness(b, harnessOpts{})
	modelPath := h.addModel(tinyID, tinyModel())
	bin := llamaServer(b)
	// The service's resolved configuration, reused for the bare start.
	cfg := h.start(&llmv1.LLMConfig{ModelId: tinyID}).GetInfo().GetConfig()
	h.stop(&llmv1.StopRequest{})

	var svc, bare, outside, afterLine []time.Duration
	i := 0
	for b.Loop() {
		runSvc := func() {
			t0 := time.Now()
			res, err := h.llm.Start(context.Background(), &llmv1.StartRequest{Config: &llmv1.LLMConfig{ModelId: tinyID}})
			if err != nil {
				b.Fatal(err)
			}
			d := time.Since(t0)
			svc = append(svc, d)
			// The part of the call outside llama-server's own start (process
			// launch to readiness seen): resolution, gRPC, bookkeeping.
			outside = append(outside, d-time.Duration(res.GetStartupMs())*time.Millisecond)
			// From the service reading llama-server's "listening on" line
			// to the caller holding the answer: readiness detection.
			if at, ok := listeningLineAt(b, h); ok {
				afterLine = append(afterLine, t0.Add(d).Sub(at))
			}
			h.stop(&llmv1.StopRequest{})
		}
		runBare := func() { bare = append(bare, bareStart(b, bin, modelPath, cfg)) }
		if i%2 == 0 {
			runSvc()
			runBare()
		} else {
			runBare()
			runSvc()
		}
		i++
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	ms1, ms2 := ms(mean(svc)), ms(mean(bare))
	b.ReportMetric(ms1, "service-ms")
	b.ReportMetric(ms2, "bare-ms")
	b.ReportMetric(ms1/ms2, "ratio-mean")
	b.ReportMetric(ms(median(svc))/ms(median(bare)), "ratio-median")
	// Each iteration's two starts ran back to back under the same load:
	// the median of their ratios is the least noisy figure on a shared
	// machine.
	pairs := make([]float64, len(svc))
	for i := range svc {
		pairs[i] = float64(svc[i]) / float64(bare[i])
	}
	slices.Sort(pairs)
	b.ReportMetric(pairs[len(pairs)/2], "ratio-paired-median")
	b.ReportMetric(ms(median(outside)), "outside-process-ms")
	b.ReportMetric(ms(median(afterLine)), "line-to-caller-ms")
	b.Logf("n=%d service mean %.2f ms median %.2f ms; bare mean %.2f ms median %.2f ms; paired ratio median %.3f",
		len(svc), ms1, ms(median(svc)), ms2, ms(median(bare)), pairs[len(pairs)/2])
}

// listeningLineAt is when the service read the latest "listening on" line.
func listeningLineAt(b *testing.B, h *harness) (time.Time, bool) {
	logs, err := h.llm.StreamLogs(context.Background(), &llmv1.StreamLogsRequest{TailLines: proto.Int32(50)})
	if err != nil {
		b.Fatal(err)
	}
	var at time.Time
	for {
		m, err := logs.Recv()
		if err != nil {
			return at, !at.IsZero()
		}
		if strings.Contains(m.GetLine().GetMessage(), "listening on") {
			at = m.GetLine().GetTime().AsTime()
		}
	}
}

// bareStart runs llama-server with the service's arguments and returns the
// time from exec to the first 200 on /health.
func bareStart(b *testing.B, bin, model string, cfg *llmv1.LLMConfig) time.Duration {
	port, err := ports.Free("127.0.0.1")
	if err != nil {
		b.Fatal(err)
	}
	args := []string{"-m", model, "--host", "127.0.0.1", "--port", strconv.Itoa(port),
		"-t", strconv.Itoa(int(cfg.GetThreads())), "-c", strconv.Itoa(int(cfg.GetContextSize())), "--log-colors", "off"}
	if cfg.GpuLayers != nil {
		args = append(args, "-ngl", strconv.Itoa(int(cfg.GetGpuLayers())))
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = llamabin.Env(os.Environ())
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	url := "http://127.0.0.1:" + strconv.Itoa(port) + "/health"
	client := &http.Client{Timeout: 2 * time.Second}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	}()
	deadline := t0.Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := client.Get(url)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(t0)
			}
		}
		time.Sleep(time.Millisecond)
	}
	b.Fatal("bare llama-server not ready in 30 s")
	return 0
}

func mean(ds []time.Duration) time.Duration {
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return sum / time.Duration(max(len(ds), 1))
}

func median(ds []time.Duration) time.Duration { return quantile(ds, 0.5) }

package server_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	"github.com/genailab/genailab/pkg/llamabin"
	"github.com/genailab/genailab/pkg/ports"
	"github.com/genailab/genailab/services/llm/internal/service"
)

// BenchmarkStopRightAfterStart measures the stop that follows a start at
// once (a back-to-back offload after a reload), with the service's default
// stop grace (service.DefaultTermGrace), in pairs alternated in each
// iteration:
//   - service: gRPC Start until it returns ready, then gRPC Stop; the
//     figure is the Stop call;
//   - bare: exec llama-server with the service's arguments, poll /health
//     every millisecond until the first 200, then SIGTERM its group (SIGKILL
//     after service.DefaultTermGrace); the figure is signal to reaped.
//
// Reported: p50 and p99 of each in ms, the paired p50 ratio, and how many
// stops of each took over 300 ms (the goal is none for the service):
//
//	go test -run '^$' -bench StopRightAfterStart -benchtime 200x ./internal/server
func BenchmarkStopRightAfterStart(b *testing.B) {
	h := newHarness(b, harnessOpts{termGrace: service.DefaultTermGrace})
	modelPath := h.addModel(tinyID, tinyModel())
	bin := llamaServer(b)
	cfg := h.start(&llmv1.LLMConfig{ModelId: tinyID}).GetInfo().GetConfig()
	h.stop(&llmv1.StopRequest{})

	const slow = 300 * time.Millisecond
	var svc, bare []time.Duration
	i := 0
	for b.Loop() {
		runSvc := func() {
			h.start(&llmv1.LLMConfig{ModelId: tinyID})
			t0 := time.Now()
			h.stop(&llmv1.StopRequest{})
			svc = append(svc, time.Since(t0))
		}
		runBare := func() { bare = append(bare, bareStartStop(b, bin, modelPath, cfg)) }
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
	over := func(ds []time.Duration) (n int) {
		for _, d := range ds {
			if d > slow {
				n++
			}
		}
		return n
	}
	b.ReportMetric(ms(quantile(svc, 0.5)), "service-p50-ms")
	b.ReportMetric(ms(quantile(svc, 0.99)), "service-p99-ms")
	b.ReportMetric(ms(quantile(bare, 0.5)), "bare-p50-ms")
	b.ReportMetric(ms(quantile(bare, 0.99)), "bare-p99-ms")
	b.ReportMetric(float64(over(svc)), "service-over-300ms")
	b.ReportMetric(float64(over(bare)), "bare-over-300ms")
	b.Logf("n=%d service p50 %.1f ms p99 %.1f ms max %.1f ms (%d over %v); bare p50 %.1f ms p99 %.1f ms max %.1f ms (%d over %v)",
		len(svc), ms(quantile(svc, 0.5)), ms(quantile(svc, 0.99)), ms(quantile(svc, 1)), over(svc), slow,
		ms(quantile(bare, 0.5)), ms(quantile(bare, 0.99)), ms(quantile(bare, 1)), over(bare), slow)
}

// bareStartStop runs llama-server with the service's arguments until its
// /health answers 200, then SIGTERMs its group and returns the time from
// the signal to the process reaped (SIGKILL after the service's grace).
func bareStartStop(b *testing.B, bin, model string, cfg *llmv1.LLMConfig) time.Duration {
	port, err := ports.Free("127.0.0.1")
	if err != nil {
		b.Fatal(err)
	}
	args := []string{"-m", model, "--host", "127.0.0.1", "--port", strconv.Itoa(port),
		"-t", strconv.Itoa(int(cfg.GetThreads())), "-c", strconv.Itoa(int(cfg.GetContextSize())), "--log-colors", "off"}
	cmd := exec.Command(bin, args...)
	cmd.Env = llamabin.Env(os.Environ())
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	client := &http.Client{Timeout: 2 * time.Second}
	url := "http://127.0.0.1:" + strconv.Itoa(port) + "/health"
	deadline := time.Now().Add(30 * time.Second)
	for ready := false; !ready; {
		if time.Now().After(deadline) {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
			b.Fatal("bare llama-server not ready in 30 s")
		}
		if resp, err := client.Get(url); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			ready = resp.StatusCode == http.StatusOK
		}
		if !ready {
			time.Sleep(time.Millisecond) // the poll interval, as a bare script would
		}
	}
	client.CloseIdleConnections()
	t0 := time.Now()
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(context.Background(), service.DefaultTermGrace)
	defer cancel()
	select {
	case <-exited:
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}
	return time.Since(t0)
}

// quantile is the q-quantile (nearest rank) of ds.
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

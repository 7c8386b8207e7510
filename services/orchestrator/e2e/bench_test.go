package e2e

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
)

// BenchmarkOffloadCycle compares the offload cycle through the orchestrator (queue,
// decision, persist, stop, wait for the monitor, generate, reload until healthy, clear) with
// the same three steps done directly on the services (stop, generate, start), alternating
// the two on one stack. The image: 128×128, 8 steps on the real sd-cli with the tiny model.
func BenchmarkOffloadCycle(b *testing.B) {
	s := newStack(b, stackOptions{Budget: 1})
	params := &diffusionv1.ImageParams{Prompt: "bench", Width: proto.Int32(128), Height: proto.Int32(128), Steps: proto.Int32(8), Seed: ptr(int64(1))}
	cfg := s.llmInfo().Config
	ctx := context.Background()
	var direct, orch time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if _, err := s.llm.Stop(ctx, &llmv1.StopRequest{}); err != nil {
			b.Fatal(err)
		}
		generateDirect(b, s, params)
		if _, err := s.llm.Start(ctx, &llmv1.StartRequest{Config: cfg}); err != nil {
			b.Fatal(err)
		}
		direct += time.Since(t0)

		t1 := time.Now()
		stream, err := s.orch.GenerateImage(ctx, &orchestratorv1.GenerateImageRequest{Params: params})
		if err != nil {
			b.Fatal(err)
		}
		var id string
		for {
			m, err := stream.Recv()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if j := m.GetJobId(); j != "" {
				id = j
			}
		}
		s.events.wait(b, evRelDone, id, reloadWithin)
		orch += time.Since(t1)
	}
	b.StopTimer()
	b.ReportMetric(float64(direct.Milliseconds())/float64(b.N), "direct-ms/op")
	b.ReportMetric(float64(orch.Milliseconds())/float64(b.N), "orchestrated-ms/op")
	b.ReportMetric(float64(orch)/float64(direct), "ratio")
}

func generateDirect(b *testing.B, s *stack, p *diffusionv1.ImageParams) {
	stream, err := s.diff.GenerateImage(context.Background(), &diffusionv1.GenerateImageRequest{Params: p})
	if err != nil {
		b.Fatal(err)
	}
	for {
		m, err := stream.Recv()
		if err != nil {
			b.Fatal(err)
		}
		if m.GetResult() != nil {
			return
		}
	}
}

// BenchmarkGatewayAddedLatency1024 compares the seed contract for a 1024×1024 image through
// the REST gateway (gateway → orchestrator → diffusion service, no offload) with the
// diffusion service's own HTTP wrapper, alternating the two. It uses the sd.cpp stand-in: its
// one 1 ms step makes the difference the added latency of carrying a 1024×1024 PNG, which the
// real engine (a minute or more per 1024×1024 image here) cannot show.
func BenchmarkGatewayAddedLatency1024(b *testing.B) {
	s := newStack(b, stackOptions{Gateway: true, StandIn: true, StepMS: 1})
	benchGatewayVsWrapper(b, s, `{"prompt":"bench","width":1024,"height":1024,"steps":1,"seed":5}`)
}

// BenchmarkGatewayAddedLatency256 is the same comparison at 256×256 (a ≈200 kB PNG), where
// the path's fixed costs (queue, placement, probe, events, fsyncs, gRPC hops) dominate.
func BenchmarkGatewayAddedLatency256(b *testing.B) {
	s := newStack(b, stackOptions{Gateway: true, StandIn: true, StepMS: 1})
	benchGatewayVsWrapper(b, s, `{"prompt":"bench","width":256,"height":256,"steps":1,"seed":5}`)
}

// BenchmarkGatewayAddedLatencyReal is the same comparison on the real sd-cli: 128×128, 8 steps.
func BenchmarkGatewayAddedLatencyReal(b *testing.B) {
	s := newStack(b, stackOptions{Gateway: true})
	benchGatewayVsWrapper(b, s, `{"prompt":"bench","width":128,"height":128,"steps":8,"seed":5}`)
}

// benchGatewayVsWrapper posts body to the diffusion seed wrapper and through the gateway,
// alternating, and reports both (means), their ratio, and the median of the paired
// differences and ratios (added-p50-ms, ratio-p50: robust to the odd slow image, which
// moves a mean by milliseconds).
func benchGatewayVsWrapper(b *testing.B, s *stack, body string) {
	post := func(url string) {
		resp, err := http.Post(url+"/v1/images/generations", "application/json", strings.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || n < 1000 {
			b.Fatalf("%s: %d (%d bytes)", url, resp.StatusCode, n)
		}
	}
	post(s.diffHTT) // warm both paths
	post(s.gateway)
	var direct, gw time.Duration
	var added, ratios []float64
	mark := len(s.events.all(""))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		post(s.diffHTT)
		d := time.Since(t0)
		t1 := time.Now()
		post(s.gateway)
		g := time.Since(t1)
		direct, gw = direct+d, gw+g
		added = append(added, float64(g-d)/float64(time.Millisecond))
		ratios = append(ratios, float64(g)/float64(d))
	}
	b.StopTimer()
	slices.Sort(added)
	slices.Sort(ratios)
	b.ReportMetric(added[len(added)/2], "added-p50-ms")
	b.ReportMetric(ratios[len(ratios)/2], "ratio-p50")
	b.ReportMetric(float64(direct.Microseconds())/1000/float64(b.N), "wrapper-ms/op")
	b.ReportMetric(float64(gw.Microseconds())/1000/float64(b.N), "gateway-ms/op")
	b.ReportMetric(float64(gw-direct)/float64(time.Millisecond)/float64(b.N), "added-ms/op")
	b.ReportMetric(float64(gw)/float64(direct), "ratio")
	reportStages(b, s.events, mark, b.N)
}

// reportStages reports the medians of the stage times the orchestrator's events carry
// (genailab_orchestrator_image_stage_seconds) for the n images after the first mark events.
func reportStages(b *testing.B, l *eventLog, mark, n int) {
	deadline := time.After(30 * time.Second)
	var evs []*orchestratorv1.Event
	for {
		l.mu.Lock()
		evs = slices.Clone(l.events[mark:])
		ch := l.change
		l.mu.Unlock()
		finished := 0
		for _, e := range evs {
			if e.GetType() == orchestratorv1.EventType_EVENT_TYPE_JOB_FINISHED {
				finished++
			}
		}
		if finished >= n {
			break
		}
		select {
		case <-ch:
		case <-deadline:
			b.Fatalf("%d of %d images finished in the event log", finished, n)
		}
	}
	stages := map[string][]float64{}
	for _, e := range evs {
		for _, k := range []string{"record_ms", "gather_ms", "generation_ms", "store_ms"} {
			if v, ok := e.GetValues()[k]; ok {
				stages[k] = append(stages[k], v)
			}
		}
	}
	for k, v := range stages {
		slices.Sort(v)
		b.ReportMetric(v[len(v)/2], strings.TrimSuffix(k, "_ms")+"-p50-ms")
	}
}

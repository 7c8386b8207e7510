package e2e

import (
	"context"
	"errors"
	"io"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
)

// BenchmarkLLMDownTime measures, on the real llama-server and sd-cli, the LLM's down time in
// an offload cycle (the RELOAD_FINISHED event's down_ms: from the saved state before the stop
// to the LLM healthy again) ÷ the image's own engine time (ImageResult.time_taken_ms), with
// the early reload (at the engine's STAGE_DONE) and with -late-reload (once the image is
// delivered), two stacks, alternated image by image. Goal ≤ 1.05 with the early reload.
func BenchmarkLLMDownTime(b *testing.B) {
	early := newStack(b, stackOptions{Budget: 1})
	late := newStack(b, stackOptions{Budget: 1, OrchestratorArgs: []string{"-late-reload"}})
	params := &diffusionv1.ImageParams{Prompt: "bench", Width: proto.Int32(128), Height: proto.Int32(128), Steps: proto.Int32(8), Seed: ptr(int64(1))}
	var re, rl, de, dl []float64
	cycle := func(s *stack) (ratio, downMs float64) {
		stream, err := s.orch.GenerateImage(context.Background(), &orchestratorv1.GenerateImageRequest{Params: params})
		if err != nil {
			b.Fatal(err)
		}
		var id string
		var engineMs int64
		for {
			m, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if j := m.GetJobId(); j != "" {
				id = j
			}
			if r := m.GetResult(); r != nil {
				engineMs = r.GetTimeTakenMs()
			}
		}
		ev := s.events.wait(b, evRelDone, id, reloadWithin)
		down := ev.GetValues()["down_ms"]
		if engineMs <= 0 || down <= 0 {
			b.Fatalf("engine %d ms, down %v ms (%v)", engineMs, down, ev.GetValues())
		}
		return down / float64(engineMs), down
	}
	i := 0
	for b.Loop() {
		order := []*stack{early, late}
		if i%2 == 1 {
			order = []*stack{late, early}
		}
		for _, s := range order {
			r, d := cycle(s)
			if s == early {
				re, de = append(re, r), append(de, d)
			} else {
				rl, dl = append(rl, r), append(dl, d)
			}
		}
		i++
	}
	b.ReportMetric(medianF(re), "early-down/engine")
	b.ReportMetric(medianF(rl), "late-down/engine")
	b.ReportMetric(medianF(de), "early-down-ms")
	b.ReportMetric(medianF(dl), "late-down-ms")
}

func medianF(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

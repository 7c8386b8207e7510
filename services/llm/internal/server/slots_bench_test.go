package server_test

import (
	"errors"
	"io"
	"testing"
	"time"

	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	"github.com/genailab/genailab/pkg/ggufgen"
	"github.com/genailab/genailab/services/llm/internal/llamaclient"
)

// BenchmarkSlotRestoreTTFT measures, in the same run and alternating, the time to first token
// of the next turn of a conversation with a 2,251-token prefix: after an offload cycle with
// the slots restored, after one without restore (the whole prompt processed again), and with
// no offload at all. Reported: the median of each in ms, restore/cold (goal ≤ 0.3 on the
// bigger model) and restore/none (goal ≤ 1.3). The offload cycle itself (save, stop, start,
// restore) is not part of the measured time.
func BenchmarkSlotRestoreTTFT(b *testing.B) {
	for _, m := range []struct {
		name string
		cfg  ggufgen.Config
	}{
		{"tiny", ggufgen.Config{Seed: 1, Context: slotCtx}},
		{"bigger", ggufgen.Config{Seed: 2, Dim: 256, Layers: 4, Heads: 8, FFN: 512, Context: slotCtx}},
	} {
		b.Run(m.name, func(b *testing.B) {
			h := newHarness(b, harnessOpts{})
			h.addModel("m", m.cfg)
			info := h.start(slotConfig()).GetInfo()
			history := []llamaclient.Message{{Role: "user", Content: longPrefix}}
			_, reply := benchTurn(b, info, history)
			history = append(history, llamaclient.Message{Role: "assistant", Content: reply}, llamaclient.Message{Role: "user", Content: "and then?"})
			var none, restore, cold []time.Duration
			variants := []func(){
				func() {
					benchTurn(b, info, history[:1]) // the prefix in the slot (a cache hit)
					d, _ := benchTurn(b, info, history)
					none = append(none, d)
				},
				func() {
					benchTurn(b, info, history[:1])
					saved := h.stop(&llmv1.StopRequest{ForOffload: true, DrainTimeoutMs: 5000}).GetSlotSave()
					res, err := h.llm.Start(ctxTimeout(b, 60*time.Second), &llmv1.StartRequest{Config: slotConfig(), RestoreSlotFiles: fileNames(saved)})
					if err != nil || len(res.GetSlotRestore().GetSlots()) != 1 {
						b.Fatalf("restore: %v %v", res, err)
					}
					info = res.GetInfo()
					d, _ := benchTurn(b, info, history)
					restore = append(restore, d)
				},
				func() {
					benchTurn(b, info, history[:1])
					h.stop(&llmv1.StopRequest{ForOffload: true, DrainTimeoutMs: 5000})
					info = h.start(slotConfig()).GetInfo()
					d, _ := benchTurn(b, info, history)
					cold = append(cold, d)
				},
			}
			i := 0
			for b.Loop() {
				for k := range variants {
					variants[(i+k)%len(variants)]()
				}
				i++
			}
			mn, mr, mc := median(none), median(restore), median(cold)
			b.ReportMetric(ms(mn), "none-ms")
			b.ReportMetric(ms(mr), "restore-ms")
			b.ReportMetric(ms(mc), "cold-ms")
			b.ReportMetric(float64(mr)/float64(mc), "restore/cold")
			b.ReportMetric(float64(mr)/float64(mn), "restore/none")
		})
	}
}

// benchTurn sends one turn to the llama-server of info and returns the time to its first
// token (from sending the request to the first content event) and the reply.
func benchTurn(b *testing.B, info *llmv1.LLMInfo, msgs []llamaclient.Message) (time.Duration, string) {
	b.Helper()
	c, err := llamaclient.New(info.GetBaseUrl(), nil)
	if err != nil {
		b.Fatal(err)
	}
	temp := 0.0
	t0 := time.Now()
	st, err := c.ChatStream(ctxTimeout(b, 120*time.Second), llamaclient.ChatRequest{Messages: msgs, MaxTokens: 4, Temperature: &temp})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	var first time.Duration
	var text []byte
	for {
		ev, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
		if ev.Content != "" && first == 0 {
			first = time.Since(t0)
		}
		text = append(text, ev.Content...)
	}
	if first == 0 {
		first = time.Since(t0)
	}
	return first, string(text)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

package stack_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	"github.com/genailab/genailab/pkg/testenv"
	"github.com/genailab/genailab/stack/internal/stack"
)

// chatTokens is the length of every benchmark reply.
const chatTokens = 8

// chatRun is one timed chat: the whole request and, for a streamed one, the time
// to the first token's bytes.
type chatRun struct{ total, first time.Duration }

// chatSurface is one way to run the same chat.
type chatSurface struct {
	name string
	// base is the direct llama-server run it is compared with.
	base string
	run  func(b *testing.B) chatRun
}

// BenchmarkChatRelay runs the same warm 8-token chat (same prompt, same seed, so the
// same work for llama-server) directly on the stack's llama-server and through every
// surface the stack offers, one of each per iteration in a rotating order, so each
// surface and its baseline alternate under the same load:
//
//   - direct: llama-server /v1/chat/completions, stream false; direct-stream: stream
//     true (with usage, as the LLM service asks);
//   - openai and openai-stream: the gateway's /openai/v1/chat/completions;
//   - rest: the gateway's POST /v1/llm/chat (newline-delimited JSON, token by token),
//     rest-whole: the same with wholeReply;
//   - grpc: the LLM service's Chat, grpc-whole: with whole_reply;
//   - floor-stream and floor: the floor relay (floorrelay_test.go), the least any
//     relay in its own process does, in front of the same llama-server: what it adds
//     over direct is the hop itself on this machine, and the gRPC surfaces are
//     reported against it too ("-floor-ratio").
//
// A non-streamed surface is compared with direct, a streamed one with direct-stream.
// Reported per surface: the median of the paired throughput ratios (baseline time ÷
// surface time, goal ≥ 0.95), the median of the paired per-request deltas in ms
// (goal ≤ +0.5) and, for streamed surfaces, the median paired first-token delta in ms
// (goal ≤ +1). Run with -benchtime=Nx; each iteration is one request of each kind.
func BenchmarkChatRelay(b *testing.B) {
	llama := testenv.RequireLlamaServer(b)
	bin := b.TempDir()
	buildInto(b, bin)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	data := b.TempDir()
	model, err := stack.EnsureTinyModel(ctx, data)
	if err != nil {
		b.Fatal(err)
	}
	logs := &syncWriter{w: &bytes.Buffer{}}
	s, err := stack.Start(ctx, stack.Options{DataDir: data, BinDir: bin, Ephemeral: true, LlamaServer: llama, LLMModel: model, LogOutput: logs})
	if err != nil {
		b.Fatalf("start stack: %v\n%s", err, logs.String())
	}
	defer s.Stop(context.Background())
	cc, err := grpc.NewClient(s.Addr("llm"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Close()
	llm := llmv1.NewLLMServiceClient(cc)
	msgs := []*llmv1.ChatMessage{{Role: "user", Content: "Say something short."}}
	// The first chat waits for the boot-time llama-server to be ready.
	warm := &llmv1.ChatRequest{Messages: msgs, MaxTokens: chatTokens, Seed: proto.Int64(1), WaitTimeoutMs: 120_000}
	if _, err := grpcChat(ctx, llm, warm); err != nil {
		b.Fatalf("first chat: %v\n%s", err, logs.String())
	}
	info, err := llm.GetInfo(ctx, &llmv1.GetInfoRequest{})
	if err != nil {
		b.Fatal(err)
	}
	direct := info.GetInfo().GetBaseUrl() + "/v1/chat/completions"
	gw := "http://" + s.Addr("gateway")
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}

	const llamaBody = `{"messages":[{"role":"user","content":"Say something short."}],"max_tokens":8,"seed":1,"stream":%t,"stream_options":{"include_usage":%t}}`
	const openaiBody = `{"model":"m","messages":[{"role":"user","content":"Say something short."}],"max_tokens":8,"seed":1,"stream":%t}`
	const restBody = `{"messages":[{"role":"user","content":"Say something short."}],"maxTokens":8,"seed":1,"wholeReply":%t}`
	post := func(url, body string) chatRun {
		r, err := postChat(ctx, hc, url, body)
		if err != nil {
			b.Fatalf("POST %s: %v\n%s", url, err, logs.String())
		}
		return r
	}
	grpcRun := func(whole bool) chatRun {
		r, err := grpcChat(ctx, llm, &llmv1.ChatRequest{Messages: msgs, MaxTokens: chatTokens, Seed: proto.Int64(1), WholeReply: whole})
		if err != nil {
			b.Fatalf("gRPC Chat: %v\n%s", err, logs.String())
		}
		return r
	}
	floor := startFloorRelay(b, direct)
	floorRun := func(stream bool) chatRun {
		r, err := floor.chat(ctx, fmt.Sprintf(llamaBody, stream, stream), stream)
		if err != nil {
			b.Fatalf("floor relay: %v", err)
		}
		return r
	}
	surfaces := []chatSurface{
		{"direct", "", func(*testing.B) chatRun { return post(direct, fmt.Sprintf(llamaBody, false, false)) }},
		{"direct-stream", "", func(*testing.B) chatRun { return post(direct, fmt.Sprintf(llamaBody, true, true)) }},
		{"openai", "direct", func(*testing.B) chatRun {
			return post(gw+"/openai/v1/chat/completions", fmt.Sprintf(openaiBody, false))
		}},
		{"openai-stream", "direct-stream", func(*testing.B) chatRun {
			return post(gw+"/openai/v1/chat/completions", fmt.Sprintf(openaiBody, true))
		}},
		{"rest", "direct-stream", func(*testing.B) chatRun { return post(gw+"/v1/llm/chat", fmt.Sprintf(restBody, false)) }},
		{"rest-whole", "direct", func(*testing.B) chatRun { return post(gw+"/v1/llm/chat", fmt.Sprintf(restBody, true)) }},
		{"grpc", "direct-stream", func(*testing.B) chatRun { return grpcRun(false) }},
		{"grpc-whole", "direct", func(*testing.B) chatRun { return grpcRun(true) }},
		{"floor", "direct", func(*testing.B) chatRun { return floorRun(false) }},
		{"floor-stream", "direct-stream", func(*testing.B) chatRun { return floorRun(true) }},
	}
	// Warm every path (connections, prompt cache) before measuring.
	for range 5 {
		for _, sf := range surfaces {
			sf.run(b)
		}
	}
	runs := make(map[string][]chatRun, len(surfaces))
	i := 0
	for b.Loop() {
		for k := range surfaces {
			sf := surfaces[(i+k)%len(surfaces)]
			runs[sf.name] = append(runs[sf.name], sf.run(b))
		}
		i++
	}
	ms := func(d float64) float64 { return d / float64(time.Millisecond) }
	// The surfaces with one hop before llama-server, as the floor relay has.
	floorOf := map[string]string{"grpc": "floor-stream", "grpc-whole": "floor"}
	for _, sf := range surfaces {
		got := runs[sf.name]
		b.ReportMetric(ms(float64(medianOf(got, func(r chatRun) float64 { return float64(r.total) }))), sf.name+"-p50-ms")
		if sf.base == "" {
			continue
		}
		base := runs[sf.base]
		ratio := pairedMedian(base, got, func(x, y chatRun) float64 { return float64(x.total) / float64(y.total) })
		delta := pairedMedian(base, got, func(x, y chatRun) float64 { return float64(y.total - x.total) })
		b.ReportMetric(ratio, sf.name+"-ratio")
		b.ReportMetric(ms(delta), sf.name+"-delta-ms")
		line := fmt.Sprintf("%-13s vs %-13s throughput ratio %.3f, per request %+.3f ms (p50 %.3f vs %.3f ms)", sf.name, sf.base, ratio, ms(delta),
			ms(medianOf(got, func(r chatRun) float64 { return float64(r.total) })), ms(medianOf(base, func(r chatRun) float64 { return float64(r.total) })))
		if sf.base == "direct-stream" {
			first := pairedMedian(base, got, func(x, y chatRun) float64 { return float64(y.first - x.first) })
			b.ReportMetric(ms(first), sf.name+"-first-token-delta-ms")
			line += fmt.Sprintf(", first token %+.3f ms", ms(first))
		}
		if f, ok := floorOf[sf.name]; ok {
			// The surface against the floor relay's same hop: 1 means it adds
			// nothing to what any relay in its own process costs here.
			r3 := pairedMedian(runs[f], got, func(x, y chatRun) float64 { return float64(x.total) / float64(y.total) })
			d3 := pairedMedian(runs[f], got, func(x, y chatRun) float64 { return float64(y.total - x.total) })
			b.ReportMetric(r3, sf.name+"-floor-ratio")
			line += fmt.Sprintf("; vs %s %.3f, %+.3f ms", f, r3, ms(d3))
		}
		if sf.name == "rest" || sf.name == "grpc" || sf.name == "openai-stream" {
			// Streamed surfaces against the non-streamed direct request too.
			r2 := pairedMedian(runs["direct"], got, func(x, y chatRun) float64 { return float64(x.total) / float64(y.total) })
			line += fmt.Sprintf("; vs direct %.3f", r2)
		}
		b.Log(line)
	}
	b.Logf("n=%d requests of each kind", len(runs["direct"]))
}

// postChat posts a chat request and reads the whole answer; first is when the first
// line holding a non-empty "content" arrived (streamed answers).
func postChat(ctx context.Context, hc *http.Client, url, body string) (chatRun, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return chatRun{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	t0 := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		return chatRun{}, err
	}
	defer resp.Body.Close()
	var r chatRun
	br := bufio.NewReader(resp.Body)
	var all []byte
	for {
		line, err := br.ReadSlice('\n')
		if r.first == 0 && bytes.Contains(line, []byte(`"content":"`)) && !bytes.Contains(line, []byte(`"content":""`)) {
			r.first = time.Since(t0)
		}
		if resp.StatusCode != http.StatusOK && len(all) < 4096 {
			all = append(all, line...)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return chatRun{}, err
		}
	}
	r.total = time.Since(t0)
	if resp.StatusCode != http.StatusOK {
		return chatRun{}, fmt.Errorf("HTTP %d: %s", resp.StatusCode, all)
	}
	return r, nil
}

// grpcChat runs a Chat to its end; first is the first delta's arrival.
func grpcChat(ctx context.Context, llm llmv1.LLMServiceClient, req *llmv1.ChatRequest) (chatRun, error) {
	t0 := time.Now()
	st, err := llm.Chat(ctx, req)
	if err != nil {
		return chatRun{}, err
	}
	var r chatRun
	for {
		m, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return chatRun{}, err
		}
		if r.first == 0 && m.GetDelta().GetContent() != "" {
			r.first = time.Since(t0)
		}
	}
	r.total = time.Since(t0)
	return r, nil
}

func medianOf(rs []chatRun, f func(chatRun) float64) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	return median(v)
}

// pairedMedian is the median of f over the runs of the same iteration.
func pairedMedian(base, got []chatRun, f func(base, got chatRun) float64) float64 {
	v := make([]float64, min(len(base), len(got)))
	for i := range v {
		v[i] = f(base[i], got[i])
	}
	return median(v)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

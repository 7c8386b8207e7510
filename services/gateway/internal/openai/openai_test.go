package openai_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/pkg/grpcerr"
	"github.com/genailab/genailab/services/gateway/internal/openai"
)

// orchestrator is the stand-in orchestrator: GenerateImage streams a job id, a progress
// message per step (with a preview when asked for: the step's number in the "PNG") and
// the result, n images whose "PNG" bytes are the request echoed.
type orchestrator struct {
	orchestratorv1.UnimplementedOrchestratorServiceServer
	mu    sync.Mutex
	seeds []int64
	got   []*diffusionv1.ImageParams
	full  bool
}

func (o *orchestrator) GenerateImage(r *orchestratorv1.GenerateImageRequest, s orchestratorv1.OrchestratorService_GenerateImageServer) error {
	if o.full {
		return grpcerr.New(grpcerr.Info{Code: codes.ResourceExhausted, Reason: grpcerr.ReasonQueueFull, Message: "the image queue is full", RetryAfter: 3 * time.Second})
	}
	p := r.GetParams()
	if p.GetPrompt() == "" {
		return status.Error(codes.InvalidArgument, "prompt is required")
	}
	n := max(p.GetN(), 1)
	o.mu.Lock()
	o.got = append(o.got, p)
	for i := range n {
		o.seeds = append(o.seeds, p.GetSeed()+int64(i))
	}
	o.mu.Unlock()
	if err := s.Send(&orchestratorv1.GenerateImageResponse{Payload: &orchestratorv1.GenerateImageResponse_JobId{JobId: "job-1"}}); err != nil {
		return err
	}
	steps := int32(4)
	if p.Steps != nil {
		steps = p.GetSteps()
	}
	for i := range n {
		for step := int32(1); step <= steps; step++ {
			pr := &diffusionv1.Progress{Stage: diffusionv1.Stage_STAGE_SAMPLING, Step: step, TotalSteps: steps, ImageIndex: i, ImageCount: n}
			if iv := p.GetPreview().GetInterval(); p.GetPreview() != nil && step%max(iv, 1) == 0 {
				pr.Preview = &diffusionv1.Preview{Png: []byte(fmt.Sprintf("preview %d of image %d", step, i)), Step: step, ImageIndex: i}
			}
			if p.GetPrompt() == "fail mid-stream" && step == 2 {
				return grpcerr.New(grpcerr.Info{Code: codes.Unavailable, Reason: "ENGINE_WENT_AWAY", Message: "the engine went away"})
			}
			if err := s.Send(&orchestratorv1.GenerateImageResponse{Payload: &orchestratorv1.GenerateImageResponse_Progress{Progress: pr}}); err != nil {
				return err
			}
		}
	}
	res := &diffusionv1.ImageResult{}
	for i := range n {
		img, _ := json.Marshal(map[string]any{"w": p.Width, "h": p.Height, "steps": p.Steps, "seed": p.GetSeed() + int64(i)})
		if i == 0 {
			res.Png, res.Seed, res.Width, res.Height = img, p.GetSeed(), p.GetWidth(), p.GetHeight()
			continue
		}
		res.Batch = append(res.Batch, &diffusionv1.BatchImage{Png: img, Seed: p.GetSeed() + int64(i), Width: p.GetWidth(), Height: p.GetHeight()})
	}
	return s.Send(&orchestratorv1.GenerateImageResponse{Payload: &orchestratorv1.GenerateImageResponse_Result{Result: res}})
}

// llm streams the last user message back in two deltas.
type llm struct {
	llmv1.UnimplementedLLMServiceServer
	got *llmv1.ChatRequest
}

func (l *llm) GetInfo(context.Context, *llmv1.GetInfoRequest) (*llmv1.GetInfoResponse, error) {
	return &llmv1.GetInfoResponse{Info: &llmv1.LLMInfo{ModelId: "tiny"}}, nil
}

func (l *llm) Chat(r *llmv1.ChatRequest, s llmv1.LLMService_ChatServer) error {
	l.got = r
	text := r.Messages[len(r.Messages)-1].Content
	switch text {
	case "refuse":
		return grpcerr.New(grpcerr.Info{Code: codes.FailedPrecondition, Reason: grpcerr.ReasonEngineNotRunning, Message: "llm server is not running (stopped)"})
	case "fail mid-stream":
		if err := s.Send(&llmv1.ChatResponse{Event: &llmv1.ChatResponse_Delta{Delta: &llmv1.ChatDelta{Content: "Hel"}}}); err != nil {
			return err
		}
		return grpcerr.New(grpcerr.Info{Code: codes.Unavailable, Reason: "ENGINE_WENT_AWAY", Message: "llm server went away during the request"})
	}
	half := len(text) / 2
	for _, d := range []string{text[:half], text[half:]} {
		if err := s.Send(&llmv1.ChatResponse{Event: &llmv1.ChatResponse_Delta{Delta: &llmv1.ChatDelta{Content: d}}}); err != nil {
			return err
		}
	}
	return s.Send(&llmv1.ChatResponse{Event: &llmv1.ChatResponse_Done{Done: &llmv1.ChatDone{FinishReason: "length", PromptTokens: 5, CompletionTokens: 2}}})
}

func serve(t *testing.T) (*httptest.Server, *orchestrator, *llm) {
	t.Helper()
	return serveWith(t, nil)
}

// serveWith serves the surface wrapped by wrap (nil: as it is).
func serveWith(t *testing.T, wrap func(http.Handler) http.Handler) (*httptest.Server, *orchestrator, *llm) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	o, l := &orchestrator{}, &llm{}
	orchestratorv1.RegisterOrchestratorServiceServer(gs, o)
	llmv1.RegisterLLMServiceServer(gs, l)
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	var h http.Handler = openai.New(orchestratorv1.NewOrchestratorServiceClient(cc), llmv1.NewLLMServiceClient(cc), nil)
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, o, l
}

func post(t *testing.T, url, body string) (*http.Response, map[string]any) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp, out
}

func TestImagesGenerations(t *testing.T) {
	srv, o, _ := serve(t)
	resp, out := post(t, srv.URL+"/openai/v1/images/generations", `{"prompt":"a fox","n":2,"size":"128x64","response_format":"b64_json","seed":7}`)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %v", resp.StatusCode, out)
	}
	data := out["data"].([]any)
	if len(data) != 2 || out["created"].(float64) <= 0 {
		t.Fatalf("response %v", out)
	}
	for i, d := range data {
		raw, err := base64.StdEncoding.DecodeString(d.(map[string]any)["b64_json"].(string))
		if err != nil {
			t.Fatal(err)
		}
		var img map[string]float64
		_ = json.Unmarshal(raw, &img)
		if img["w"] != 128 || img["h"] != 64 || img["seed"] != float64(7+i) {
			t.Fatalf("image %d made from %v", i, img)
		}
	}
	if len(o.got) != 1 || o.got[0].GetN() != 2 || len(o.seeds) != 2 {
		t.Fatalf("orchestrator called %d times (want one batch of 2): %v", len(o.got), o.got)
	}
}

func TestImagesErrors(t *testing.T) {
	srv, o, _ := serve(t)
	for body, want := range map[string]int{
		`{"prompt":"x","size":"big"}`:            400,
		`{"prompt":"x","n":0}`:                   400,
		`{"prompt":"x","n":11}`:                  400,
		`{"prompt":"x","response_format":"url"}`: 400,
		`{"prompt":""}`:                          400, // from the orchestrator's InvalidArgument
		`{"prompt":`:                             400,
	} {
		resp, out := post(t, srv.URL+"/openai/v1/images/generations", body)
		if resp.StatusCode != want || out["error"] == nil || out["error"] == "" {
			t.Errorf("%s: status %d body %v, want %d with an error", body, resp.StatusCode, out, want)
		}
	}
	o.full = true
	resp, out := post(t, srv.URL+"/openai/v1/images/generations", `{"prompt":"x"}`)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" || !strings.Contains(out["error"].(map[string]any)["message"].(string), "full") {
		t.Fatalf("full queue: %d %v %q", resp.StatusCode, out, resp.Header.Get("Retry-After"))
	}
}

// Issue 13: "steps": 0 and a size with a 0 were taken for the defaults. They are refused
// (400, OpenAI's error object with the reason) before the orchestrator is called; left
// out, they are left unset for the orchestrator to default.
func TestImagesExplicitZeroIs400(t *testing.T) {
	srv, o, _ := serve(t)
	for body, want := range map[string]string{
		`{"prompt":"x","steps":0}`:      "steps must be within 1-150, got 0",
		`{"prompt":"x","size":"0x512"}`: "width must be a multiple of 64 within 64-2048, got 0",
		`{"prompt":"x","size":"512x0"}`: "height must be a multiple of 64 within 64-2048, got 0",
	} {
		resp, out := post(t, srv.URL+"/openai/v1/images/generations", body)
		e, _ := out["error"].(map[string]any)
		if msg, _ := e["message"].(string); resp.StatusCode != 400 || !strings.Contains(msg, want) || e["type"] != "invalid_request_error" {
			t.Errorf("%s: %d %v, want 400 %q", body, resp.StatusCode, out, want)
		}
	}
	if len(o.seeds) != 0 {
		t.Fatalf("the orchestrator was called %d times for refused requests", len(o.seeds))
	}
	resp, out := post(t, srv.URL+"/openai/v1/images/generations", `{"prompt":"x"}`)
	if resp.StatusCode != 200 {
		t.Fatalf("omitted: %d %v", resp.StatusCode, out)
	}
	raw, _ := base64.StdEncoding.DecodeString(out["data"].([]any)[0].(map[string]any)["b64_json"].(string))
	var sent map[string]any
	_ = json.Unmarshal(raw, &sent)
	if sent["w"] != nil || sent["h"] != nil || sent["steps"] != nil {
		t.Fatalf("omitted size and steps were sent as %v, want unset", sent)
	}
}

func TestChatCompletion(t *testing.T) {
	srv, _, l := serve(t)
	resp, out := post(t, srv.URL+"/openai/v1/chat/completions",
		`{"model":"m","messages":[{"role":"developer","content":"be brief"},{"role":"user","content":[{"type":"text","text":"hello"}]}],"max_tokens":9,"stop":"\n"}`)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d %v", resp.StatusCode, out)
	}
	choice := out["choices"].([]any)[0].(map[string]any)
	if choice["message"].(map[string]any)["content"] != "hello" || choice["finish_reason"] != "length" || out["object"] != "chat.completion" || out["model"] != "m" {
		t.Fatalf("response %v", out)
	}
	if u := out["usage"].(map[string]any); u["total_tokens"] != float64(7) {
		t.Fatalf("usage %v", u)
	}
	if l.got.MaxTokens != 9 || l.got.Messages[0].Role != "system" || len(l.got.Stop) != 1 || !l.got.WholeReply {
		t.Fatalf("relayed request %v", l.got)
	}
	resp, _ = post(t, srv.URL+"/openai/v1/chat/completions", `{"messages":[{"role":"tool","content":"x"}]}`)
	if resp.StatusCode != 400 {
		t.Fatalf("bad role: %d", resp.StatusCode)
	}
	resp, _ = post(t, srv.URL+"/openai/v1/chat/completions", `{"messages":[]}`)
	if resp.StatusCode != 400 {
		t.Fatalf("no messages: %d", resp.StatusCode)
	}
}

func TestChatCompletionStream(t *testing.T) {
	srv, _, l := serve(t)
	resp, err := http.Post(srv.URL+"/openai/v1/chat/completions", "application/json",
		strings.NewReader(`{"stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hello"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	var text strings.Builder
	var chunks []map[string]any
	done := false
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			t.Fatalf("not an SSE data line: %q", line)
		}
		if data == "[DONE]" {
			done = true
			break
		}
		var c map[string]any
		if err := json.Unmarshal([]byte(data), &c); err != nil {
			t.Fatal(err)
		}
		chunks = append(chunks, c)
		if ch := c["choices"].([]any); len(ch) > 0 {
			if d, ok := ch[0].(map[string]any)["delta"].(map[string]any); ok {
				s, _ := d["content"].(string)
				text.WriteString(s)
			}
		}
	}
	if !done || text.String() != "hello" {
		t.Fatalf("done %v text %q chunks %v", done, text.String(), chunks)
	}
	if l.got.WholeReply {
		t.Fatal("a streamed request asked the LLM service for a whole reply")
	}
	first := chunks[0]["choices"].([]any)[0].(map[string]any)["delta"].(map[string]any)
	if first["role"] != "assistant" || chunks[0]["object"] != "chat.completion.chunk" || chunks[0]["model"] != "tiny" {
		t.Fatalf("first chunk %v", chunks[0])
	}
	last := chunks[len(chunks)-1]
	if last["usage"].(map[string]any)["completion_tokens"] != float64(2) {
		t.Fatalf("usage chunk %v", last)
	}
	fin := chunks[len(chunks)-2]["choices"].([]any)[0].(map[string]any)
	if fin["finish_reason"] != "length" {
		t.Fatalf("finish chunk %v", fin)
	}
}

func TestUnknownRouteAndModels(t *testing.T) {
	srv, _, _ := serve(t)
	resp, err := http.Get(srv.URL + "/openai/v1/embeddings")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("unknown route: %d", resp.StatusCode)
	}
	resp, err = http.Get(srv.URL + "/openai/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Data []struct{ ID string } `json:"data"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	if len(out.Data) != 1 || out.Data[0].ID != "tiny" {
		t.Fatalf("models %+v", out)
	}
}

// openAIError is OpenAI's error object.
type openAIError struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Code    string  `json:"code"`
		Param   *string `json:"param"`
	} `json:"error"`
}

func postOpenAI(t *testing.T, url, body string) (*http.Response, openAIError) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e openAIError
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	return resp, e
}

// The surface answers OpenAI's error object, with the status httperr gives the backend's
// code and the server's own Retry-After.
func TestOpenAIErrorObject(t *testing.T) {
	srv, o, _ := serve(t)
	o.full = true
	resp, e := postOpenAI(t, srv.URL+"/openai/v1/images/generations", `{"prompt":"x"}`)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "3" || e.Error.Type != "rate_limit_error" || e.Error.Code != "queue_full" || e.Error.Message != "the image queue is full" {
		t.Errorf("full queue: %d %q %+v", resp.StatusCode, resp.Header.Get("Retry-After"), e)
	}
	resp, e = postOpenAI(t, srv.URL+"/openai/v1/images/generations", `{"prompt":"x","n":0}`)
	if resp.StatusCode != 400 || e.Error.Type != "invalid_request_error" || e.Error.Code != "invalid_argument" || e.Error.Message == "" {
		t.Errorf("bad n: %d %+v", resp.StatusCode, e)
	}
	resp, e = postOpenAI(t, srv.URL+"/openai/v1/chat/completions", `{"messages":[{"role":"user","content":"refuse"}]}`)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || e.Error.Type != "service_unavailable_error" || e.Error.Code != "engine_not_running" {
		t.Errorf("not running: %d %+v", resp.StatusCode, e)
	}
	req, _ := http.NewRequest("DELETE", srv.URL+"/openai/v1/chat/completions", nil)
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 405 {
		t.Errorf("wrong method: %d", r.StatusCode)
	}
}

// 413 comes from the body reader's *http.MaxBytesError (the gateway caps bodies).
func TestOpenAI413FromMaxBytesError(t *testing.T) {
	srv, _, _ := serveWith(t, func(h http.Handler) http.Handler { return http.MaxBytesHandler(h, 32) })
	for _, path := range []string{"images/generations", "chat/completions"} {
		resp, e := postOpenAI(t, srv.URL+"/openai/v1/"+path, `{"prompt":"`+strings.Repeat("a", 100)+`"}`)
		if resp.StatusCode != 413 || e.Error.Code != "body_too_large" || e.Error.Type != "invalid_request_error" {
			t.Errorf("%s: %d %+v", path, resp.StatusCode, e)
		}
	}
}

// A chat stream that fails after its first chunk ends with an event holding OpenAI's error
// object; one refused before its first message gets the status of its code.
func TestChatStreamErrorMidStreamIsAnErrorEvent(t *testing.T) {
	srv, _, _ := serve(t)
	resp, e := postOpenAI(t, srv.URL+"/openai/v1/chat/completions", `{"stream":true,"messages":[{"role":"user","content":"refuse"}]}`)
	if resp.StatusCode != 503 || e.Error.Code != "engine_not_running" {
		t.Errorf("refused stream: %d %+v", resp.StatusCode, e)
	}
	r, err := http.Post(srv.URL+"/openai/v1/chat/completions", "application/json", strings.NewReader(`{"stream":true,"messages":[{"role":"user","content":"fail mid-stream"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var events []string
	sc := bufio.NewScanner(r.Body)
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			events = append(events, d)
		}
	}
	if r.StatusCode != 200 || len(events) < 2 {
		t.Fatalf("%d %q", r.StatusCode, events)
	}
	var last openAIError
	if err := json.Unmarshal([]byte(events[len(events)-1]), &last); err != nil {
		t.Fatal(err)
	}
	if last.Error.Message != "llm server went away during the request" || last.Error.Type != "service_unavailable_error" || last.Error.Code != "engine_went_away" {
		t.Errorf("last event %s", events[len(events)-1])
	}
}

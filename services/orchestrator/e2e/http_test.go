package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"google.golang.org/protobuf/proto"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
)

func httpJSON(t *testing.T, method, url, body string) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s %s: not JSON (%d): %q", method, url, resp.StatusCode, raw)
	}
	return resp.StatusCode, resp.Header, out
}

func TestSeedContractAndJobsOverHTTP(t *testing.T) {
	s := newStack(t, stackOptions{Gateway: true})
	code, _, health := httpJSON(t, "GET", s.gateway+"/health", "")
	if code != 200 || health["status"] != "ok" || health["busy"] != false || len(health) != 2 {
		t.Fatalf("health %d %v", code, health)
	}
	code, _, out := httpJSON(t, "POST", s.gateway+"/v1/images/generations",
		`{"prompt":"a red fox","negativePrompt":"blurry","width":128,"height":64,"steps":3,"cfgScale":7.5,"seed":42,"sampler":"euler_a"}`)
	if code != 200 {
		t.Fatalf("generate: %d %v", code, out)
	}
	keys := []string{}
	for k := range out {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if fmt.Sprint(keys) != "[format height image seed timeTaken width]" || out["format"] != "png" || out["seed"] != float64(42) ||
		out["width"] != float64(128) || out["height"] != float64(64) {
		t.Fatalf("seed response keys %v: %v", keys, out)
	}
	raw, err := base64.StdEncoding.DecodeString(out["image"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if cfg, err := png.DecodeConfig(bytes.NewReader(raw)); err != nil || cfg.Width != 128 || cfg.Height != 64 {
		t.Fatalf("PNG %v %v", cfg, err)
	}
	code, _, out = httpJSON(t, "POST", s.gateway+"/v1/images/generations", `{"width":128}`)
	if code != 400 || !strings.Contains(out["error"].(string), "prompt") || len(out) != 1 {
		t.Fatalf("no prompt: %d %v", code, out)
	}
	// Issue 13: "steps": 0, "width": 0 and "height": 0 were taken for the defaults. They
	// are refused with 400 and the reason, before anything is queued (counted below).
	for field, want := range map[string]string{"steps": "steps must be within 1-150, got 0", "width": "width must", "height": "height must"} {
		code, _, out := httpJSON(t, "POST", s.gateway+"/v1/images/generations", fmt.Sprintf(`{"prompt":"a fox",%q:0}`, field))
		if msg, _ := out["error"].(string); code != 400 || !strings.Contains(msg, want) || !strings.Contains(msg, "got 0") || len(out) != 1 {
			t.Fatalf("%s 0: %d %v", field, code, out)
		}
	}
	// Async jobs.
	code, _, sub := httpJSON(t, "POST", s.gateway+"/v1/images/jobs", `{"params":{"prompt":"a boat","width":64,"height":64,"steps":2}}`)
	if code != 200 {
		t.Fatalf("submit %d %v", code, sub)
	}
	id := sub["job"].(map[string]any)["id"].(string)
	s.events.wait(t, evFinished, id, 120*time.Second)
	if queued := count(s.events.types(""), evQueued); queued != 2 {
		t.Fatalf("%d jobs queued, want 2 (the refused requests queue nothing): %v", queued, s.events.types(""))
	}
	{
		code, _, got := httpJSON(t, "GET", s.gateway+"/v1/images/jobs/"+id+"?include_image=true", "")
		job, _ := got["job"].(map[string]any)
		if code != 200 || job["status"] != "JOB_STATUS_SUCCEEDED" {
			t.Fatalf("job never succeeded: %d %v", code, got)
		}
		if png, _ := job["result"].(map[string]any)["png"].(string); png == "" {
			t.Fatalf("job without image: %v", job)
		}
	}
	code, _, list := httpJSON(t, "GET", s.gateway+"/v1/images/jobs?pageSize=10", "")
	if code != 200 || len(list["jobs"].([]any)) != 2 {
		t.Fatalf("list %d %v", code, list)
	}
	if code, _, _ := httpJSON(t, "DELETE", s.gateway+"/v1/images/jobs/"+id, ""); code != 200 {
		t.Fatalf("delete %d", code)
	}
	if code, _, out := httpJSON(t, "GET", s.gateway+"/v1/images/jobs/"+id, ""); code != 404 || out["error"] == nil {
		t.Fatalf("deleted job: %d %v", code, out)
	}
}

func TestTwentyConcurrentRequestsWithAQueueOfEight(t *testing.T) {
	// sd-server (the model loaded once) serves the burst: one sd-cli per image would take a minute.
	s := newStack(t, stackOptions{Gateway: true, QueueSize: 8, Mode: diffusionv1.EngineMode_ENGINE_MODE_SERVER})
	type answer struct {
		code       int
		retryAfter string
		seed       float64
	}
	answers := make([]answer, 20)
	var wg sync.WaitGroup
	for i := range answers {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			body := fmt.Sprintf(`{"prompt":"request %d","width":64,"height":64,"steps":5,"seed":%d}`, i, 1000+i)
			resp, err := http.Post(s.gateway+"/v1/images/generations", "application/json", strings.NewReader(body))
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			var out map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&out)
			a := answer{code: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
			if v, ok := out["seed"].(float64); ok {
				a.seed = v
			}
			if resp.StatusCode == 429 && !strings.Contains(fmt.Sprint(out["error"]), "full") {
				t.Errorf("429 body %v", out)
			}
			answers[i] = a
		}(i)
	}
	wg.Wait()
	served, refused := 0, 0
	for i, a := range answers {
		switch {
		case a.code == 200 && a.seed == float64(1000+i):
			served++
		case a.code == 429 && a.retryAfter != "":
			refused++
		default:
			t.Errorf("request %d: %+v", i, a)
		}
	}
	if served+refused != 20 || served < 9 {
		t.Fatalf("served %d refused %d (of 20)", served, refused)
	}
	// Served in order: each job started after every job submitted before it.
	list, err := s.orch.ListJobs(context.Background(), &orchestratorv1.ListJobsRequest{PageSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Jobs) != served {
		t.Fatalf("%d jobs stored, %d served", len(list.Jobs), served)
	}
	for i := 1; i < len(list.Jobs); i++ { // newest first
		newer, older := list.Jobs[i-1], list.Jobs[i]
		if newer.Status != orchestratorv1.JobStatus_JOB_STATUS_SUCCEEDED || !newer.StartedAt.AsTime().After(older.FinishedAt.AsTime().Add(-time.Millisecond)) {
			t.Fatalf("job %s started %v before job %s (submitted earlier) finished %v", newer.Id, newer.StartedAt.AsTime(), older.Id, older.FinishedAt.AsTime())
		}
	}
	code, _, health := httpJSON(t, "GET", s.gateway+"/health", "")
	deadline := time.Now().Add(10 * time.Second)
	for code != 200 || health["busy"] != false {
		if time.Now().After(deadline) {
			t.Fatalf("busy stuck: %d %v", code, health)
		}
		time.Sleep(20 * time.Millisecond)
		code, _, health = httpJSON(t, "GET", s.gateway+"/health", "")
	}
}

func TestChatDuringOffloadIsAnsweredAfterTheReload(t *testing.T) {
	s := newStack(t, stackOptions{Budget: 1, Gateway: true})
	done := make(chan error, 1)
	go func() {
		// The real engine loads the model and samples for seconds after the offload: the chat
		// below is sent in that window.
		_, err := s.orch.CreateImage(context.Background(), &orchestratorv1.CreateImageRequest{Prompt: "a fox", Width: proto.Int32(64), Height: proto.Int32(64), Steps: proto.Int32(8)})
		done <- err
	}()
	off := s.events.wait(t, evOffDone, "", 30*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The same chat through the REST gateway's NDJSON stream, at the same time.
	rest := make(chan restChat, 1)
	go func() { rest <- chatOverREST(ctx, s.gateway) }()
	stream, err := s.llm.Chat(ctx, &llmv1.ChatRequest{Messages: []*llmv1.ChatMessage{{Role: "user", Content: "hello"}}, MaxTokens: 8})
	if err != nil {
		t.Fatal(err)
	}
	var first time.Time
	var final *llmv1.ChatDone
	var waiting *llmv1.ChatWaiting
	for final == nil {
		m, err := stream.Recv()
		if err != nil {
			t.Fatalf("chat during offload failed: %v", err)
		}
		if w := m.GetWaiting(); w != nil {
			// The waiting status comes first, at once (issue 17).
			if waiting != nil || !first.IsZero() {
				t.Fatalf("waiting status %v after other messages", w)
			}
			waiting = w
			continue
		}
		if first.IsZero() {
			first = time.Now()
		}
		final = m.GetDone()
	}
	if waiting == nil || waiting.GetJobId() != off.JobId || !strings.HasPrefix(waiting.GetMessage(), "waiting: the LLM is offloaded for an image") {
		t.Fatalf("waiting status %v, want one naming job %s", waiting, off.JobId)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	reloaded := s.events.wait(t, evRelDone, off.JobId, reloadWithin)
	if final.WaitedMs <= 0 {
		t.Fatalf("the chat did not wait for the reload: %v", final)
	}
	if first.Before(reloaded.Time.AsTime().Add(-time.Second)) {
		t.Fatalf("chat answered at %v, before the reload finished at %v", first, reloaded.Time.AsTime())
	}
	// REST: the first NDJSON line is the waiting status naming the job, then deltas and done.
	r := <-rest
	if r.err != nil {
		t.Fatalf("REST chat during offload: %v (lines %q)", r.err, r.lines)
	}
	if len(r.lines) < 2 {
		t.Fatalf("REST chat: lines %q, want a waiting status then the reply", r.lines)
	}
	var firstLine struct {
		Result struct {
			Waiting *struct {
				Message string `json:"message"`
				JobID   string `json:"jobId"`
			} `json:"waiting"`
		} `json:"result"`
	}
	if err := json.Unmarshal([]byte(r.lines[0]), &firstLine); err != nil {
		t.Fatalf("REST chat first line %q: %v", r.lines[0], err)
	}
	w := firstLine.Result.Waiting
	if w == nil || w.JobID != off.JobId || !strings.HasPrefix(w.Message, "waiting: the LLM is offloaded for an image") {
		t.Fatalf("REST chat first line %q, want the waiting status naming job %s", r.lines[0], off.JobId)
	}
	last := r.lines[len(r.lines)-1]
	if !strings.Contains(last, `"done"`) || strings.Contains(strings.Join(r.lines[1:], "\n"), `"waiting"`) {
		t.Fatalf("REST chat lines %q: want one waiting status first and done last", r.lines)
	}
}

// restChat is what chatOverREST read: the NDJSON lines of the reply, and why it stopped early.
type restChat struct {
	lines []string
	err   error
}

// chatOverREST sends a short chat to the gateway's POST /v1/llm/chat and reads its NDJSON stream.
func chatOverREST(ctx context.Context, gateway string) restChat {
	body := `{"messages":[{"role":"user","content":"hello"}],"maxTokens":8}`
	req, err := http.NewRequestWithContext(ctx, "POST", gateway+"/v1/llm/chat", strings.NewReader(body))
	if err != nil {
		return restChat{err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return restChat{err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	var out restChat
	for _, l := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		if l != "" {
			out.lines = append(out.lines, l)
		}
	}
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %d", resp.StatusCode)
	}
	for _, l := range out.lines {
		if err == nil && strings.Contains(l, `"error"`) {
			err = fmt.Errorf("error line %s", l)
		}
	}
	out.err = err
	return out
}

func TestOpenAISurfaceWithTheOfficialClient(t *testing.T) {
	s := newStack(t, stackOptions{Gateway: true})
	client := openai.NewClient(option.WithBaseURL(s.gateway+"/openai/v1"), option.WithAPIKey("unused"), option.WithMaxRetries(0))
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	// steps is the gateway's extension (the default 20 would take long on the real engine).
	imgs, err := client.Images.Generate(ctx, openai.ImageGenerateParams{
		Prompt: "a small house", N: openai.Int(2), Size: openai.ImageGenerateParamsSize("128x64"),
		ResponseFormat: openai.ImageGenerateParamsResponseFormatB64JSON,
	}, option.WithJSONSet("steps", 4))
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs.Data) != 2 || imgs.Created == 0 {
		t.Fatalf("images %+v", imgs)
	}
	for _, d := range imgs.Data {
		raw, err := base64.StdEncoding.DecodeString(d.B64JSON)
		if err != nil {
			t.Fatal(err)
		}
		if cfg, err := png.DecodeConfig(bytes.NewReader(raw)); err != nil || cfg.Width != 128 || cfg.Height != 64 {
			t.Fatalf("PNG %v %v", cfg, err)
		}
	}
	if _, err := client.Images.Generate(ctx, openai.ImageGenerateParams{Prompt: "x", Size: "huge"}); err == nil {
		t.Fatal("a bad size was accepted")
	}
	chat, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model: tinyModel, MaxTokens: openai.Int(8),
		Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("be brief"), openai.UserMessage("hello")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(chat.Choices) != 1 || chat.Choices[0].Message.Role != "assistant" || chat.Usage.CompletionTokens == 0 || chat.Choices[0].FinishReason == "" {
		t.Fatalf("chat %+v", chat)
	}
	stream := client.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
		Model: tinyModel, MaxTokens: openai.Int(8), Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hello")},
	})
	acc := openai.ChatCompletionAccumulator{}
	chunks := 0
	for stream.Next() {
		acc.AddChunk(stream.Current())
		chunks++
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if chunks < 3 || len(acc.Choices) != 1 || acc.Choices[0].FinishReason == "" {
		t.Fatalf("stream: %d chunks, %+v", chunks, acc.Choices)
	}
}

// count is how many of types are typ.
func count(types []orchestratorv1.EventType, typ orchestratorv1.EventType) int {
	n := 0
	for _, t := range types {
		if t == typ {
			n++
		}
	}
	return n
}

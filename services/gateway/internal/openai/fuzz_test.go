package openai_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/services/gateway/internal/openai"
)

// Issue 14's fault suite, the gateway's OpenAI surface: any body POSTed over real HTTP to
// images/generations and chat/completions, relayed over a real gRPC hop. The answer is 200
// with what was asked for, or a 4xx with OpenAI's error object and a message: never a
// 5xx, never another shape. The corpus is in testdata/fuzz.

// wantOpenAIError checks OpenAI's error object: {"error": {"message": "<reason>", "type": ...}}.
func wantOpenAIError(t *testing.T, status int, body []byte) {
	t.Helper()
	var e struct {
		Error *struct {
			Message string `json:"message"`
			Type    string `json:"type"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error == nil || strings.TrimSpace(e.Error.Message) == "" || e.Error.Type == "" {
		t.Fatalf("%d: not OpenAI's error object with a message: %s", status, body)
	}
}

func postRaw(t *testing.T, url string, body []byte) (int, string, []byte) {
	t.Helper()
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), b.Bytes()
}

func FuzzImagesGenerations(f *testing.F) {
	for _, s := range []string{
		`{"prompt":"a fox","n":2,"size":"128x64","response_format":"b64_json","seed":7}`,
		`{"prompt":"x"}`,
		`{"prompt":"x","n":0}`, `{"prompt":"x","n":-1}`, `{"prompt":"x","n":99999999999999999999}`,
		`{"prompt":"x","size":"0x0"}`, `{"prompt":"x","size":"64X64"}`, `{"prompt":"x","size":"-64x64"}`,
		`{"prompt":"x","size":"9999999999999999999x64"}`, `{"prompt":"x","size":"x"}`, `{"prompt":"x","size":"64x64x64"}`,
		`{"prompt":"x","steps":0,"cfg_scale":0,"seed":0}`, `{"prompt":"x","seed":4294967295,"n":2}`,
		`{"prompt":"x","seed":-9223372036854775808}`, `{"prompt":"x","cfg_scale":1e39}`,
		`{"prompt":"nul\u0000"}`, "{\"prompt\":\"\xff\"}", `{"prompt":""}`, `{"prompt":"x","response_format":"url"}`,
		`{"prompt":"x","sampler":"nope"}`, `[]`, `null`, ``, `{"prompt":`,
	} {
		f.Add([]byte(s))
	}
	srv := serveFuzz(f)
	url := srv.URL + "/openai/v1/images/generations"
	f.Fuzz(func(t *testing.T, body []byte) {
		status, _, answer := postRaw(t, url, body)
		switch {
		case status == http.StatusOK:
			var req struct {
				N    *int   `json:"n"`
				Size string `json:"size"`
			}
			if err := json.Unmarshal(body, &req); err != nil {
				t.Fatalf("200 for a body that is not JSON: %q", body)
			}
			var res struct {
				Created int64 `json:"created"`
				Data    []struct {
					B64JSON string `json:"b64_json"`
				} `json:"data"`
			}
			if err := json.Unmarshal(answer, &res); err != nil || res.Created <= 0 {
				t.Fatalf("200 body: %s", answer)
			}
			n := 1
			if req.N != nil {
				n = *req.N
			}
			if len(res.Data) != n {
				t.Fatalf("%d images, asked for %d", len(res.Data), n)
			}
			// The fake orchestrator echoes the size it got: the one asked for, valid; without
			// a size, none (the orchestrator's default) or the default 512x512.
			for _, d := range res.Data {
				raw, err := base64.StdEncoding.DecodeString(d.B64JSON)
				var img struct{ W, H *int }
				if err != nil || json.Unmarshal(raw, &img) != nil || (img.W == nil) != (img.H == nil) || (img.W == nil && req.Size != "") {
					t.Fatalf("image made from %s for size %q (%v)", raw, req.Size, err)
				}
				if img.W == nil {
					continue
				}
				if req.Size == "" && (*img.W != 512 || *img.H != 512) || req.Size != "" && !sameSize(req.Size, *img.W, *img.H) ||
					*img.W < 64 || *img.H < 64 || *img.W%64 != 0 || *img.H%64 != 0 {
					t.Fatalf("image made from %s for size %q", raw, req.Size)
				}
			}
		case status >= 400 && status < 500:
			wantOpenAIError(t, status, answer)
		default:
			t.Fatalf("status %d for %q: %s", status, body, answer)
		}
	})
}

// sameSize reports whether OpenAI's "WxH" size names w and h.
func sameSize(size string, w, h int) bool {
	ws, hs, ok := strings.Cut(strings.ToLower(size), "x")
	wi, err1 := strconv.Atoi(ws)
	hi, err2 := strconv.Atoi(hs)
	return ok && err1 == nil && err2 == nil && wi == w && hi == h
}

func FuzzChatCompletions(f *testing.F) {
	for _, s := range []string{
		`{"model":"m","messages":[{"role":"developer","content":"be brief"},{"role":"user","content":[{"type":"text","text":"hello"}]}],"max_tokens":9,"stop":"\n"}`,
		`{"messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}`,
		`{"messages":[]}`, `{"messages":null}`, `{}`, `{"messages":[{}]}`,
		`{"messages":[{"role":"tool","content":"x"}]}`,
		`{"messages":[{"role":"user","content":[{"type":"image_url","image_url":"x"}]}]}`,
		`{"messages":[{"role":"user","content":42}]}`,
		`{"messages":[{"role":"user","content":"nul\u0000"}],"stop":["",""]}`,
		"{\"messages\":[{\"role\":\"user\",\"content\":\"\xff\xfe\"}]}",
		`{"messages":[{"role":"user","content":"\ud800"}]}`,
		`{"messages":[{"role":"user","content":"x"}],"max_tokens":-1,"temperature":"NaN","top_p":1e39}`,
		`{"messages":[{"role":"user","content":"x"}],"max_tokens":99999999999,"seed":1e400}`,
		`{"messages":[{"role":"user","content":"x"}],"stop":{"a":1}}`,
		`[]`, ``, `{"messages":`,
	} {
		f.Add([]byte(s))
	}
	srv := serveFuzz(f)
	url := srv.URL + "/openai/v1/chat/completions"
	f.Fuzz(func(t *testing.T, body []byte) {
		status, ctype, answer := postRaw(t, url, body)
		switch {
		case status == http.StatusOK:
			var req struct {
				Messages []json.RawMessage `json:"messages"`
				Stream   bool              `json:"stream"`
			}
			if err := json.Unmarshal(body, &req); err != nil || len(req.Messages) == 0 {
				t.Fatalf("200 for %q", body)
			}
			if !req.Stream {
				var res struct {
					Object  string `json:"object"`
					Choices []struct {
						Message struct{ Content string } `json:"message"`
					} `json:"choices"`
				}
				if err := json.Unmarshal(answer, &res); err != nil || res.Object != "chat.completion" || len(res.Choices) != 1 {
					t.Fatalf("200 body: %s", answer)
				}
				return
			}
			if !strings.HasPrefix(ctype, "text/event-stream") {
				t.Fatalf("stream answered as %q", ctype)
			}
			sc := bufio.NewScanner(bytes.NewReader(answer))
			last := ""
			for sc.Scan() {
				line, ok := strings.CutPrefix(sc.Text(), "data: ")
				if !ok {
					continue
				}
				if line != "[DONE]" && !json.Valid([]byte(line)) {
					t.Fatalf("event is not JSON: %q", line)
				}
				last = line
			}
			if last != "[DONE]" {
				t.Fatalf("stream ended with %q", last)
			}
		case status >= 400 && status < 500:
			wantOpenAIError(t, status, answer)
		default:
			t.Fatalf("status %d for %q: %s", status, body, answer)
		}
	})
}

// echoLLM answers every chat with its last message's content as one delta, validating
// the request as the LLM service does first (InvalidArgument for no messages or a role
// it does not know).
type echoLLM struct {
	llmv1.UnimplementedLLMServiceServer
}

func (echoLLM) GetInfo(context.Context, *llmv1.GetInfoRequest) (*llmv1.GetInfoResponse, error) {
	return &llmv1.GetInfoResponse{Info: &llmv1.LLMInfo{ModelId: "tiny"}}, nil
}

func (echoLLM) Chat(r *llmv1.ChatRequest, s llmv1.LLMService_ChatServer) error {
	if len(r.Messages) == 0 {
		return status.Error(codes.InvalidArgument, "messages: at least one is required")
	}
	for _, m := range r.Messages {
		if m.Role != "system" && m.Role != "user" && m.Role != "assistant" {
			return status.Errorf(codes.InvalidArgument, "role %q", m.Role)
		}
	}
	text := r.Messages[len(r.Messages)-1].Content
	if err := s.Send(&llmv1.ChatResponse{Event: &llmv1.ChatResponse_Delta{Delta: &llmv1.ChatDelta{Content: text}}}); err != nil {
		return err
	}
	return s.Send(&llmv1.ChatResponse{Event: &llmv1.ChatResponse_Done{Done: &llmv1.ChatDone{FinishReason: "stop"}}})
}

// serveFuzz is serve with the echo LLM: the surface over real HTTP, its backends over
// loopback gRPC.
func serveFuzz(t testing.TB) *httptest.Server {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	orchestratorv1.RegisterOrchestratorServiceServer(gs, &orchestrator{})
	llmv1.RegisterLLMServiceServer(gs, echoLLM{})
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	srv := httptest.NewServer(openai.New(orchestratorv1.NewOrchestratorServiceClient(cc), llmv1.NewLLMServiceClient(cc), nil))
	t.Cleanup(srv.Close)
	return srv
}

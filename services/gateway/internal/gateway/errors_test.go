package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	modelsv1 "github.com/genailab/genailab/gen/models/v1"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/pkg/grpcerr"
	"github.com/genailab/genailab/services/gateway/internal/gateway"
)

// The errors the backends below answer, as the services' rule tables make them.
var (
	errQueueFull = grpcerr.New(grpcerr.Info{Code: codes.ResourceExhausted, Reason: grpcerr.ReasonQueueFull,
		Message: "the image queue is full (8 jobs)", RetryAfter: 3 * time.Second})
	errNotRunning = grpcerr.New(grpcerr.Info{Code: codes.FailedPrecondition, Reason: grpcerr.ReasonEngineNotRunning,
		Message: "ask diffusion service: diffusion engine is not running (stopped): start it first"})
	errWentAway = grpcerr.New(grpcerr.Info{Code: codes.Unavailable, Reason: "ENGINE_WENT_AWAY",
		Message: "llm server went away during the request", RetryAfter: 2 * time.Second})
	errNoSource = grpcerr.New(grpcerr.Info{Code: codes.NotFound, Reason: "SOURCE_NOT_FOUND", Message: "source not found: 404"})
	errNoJob    = grpcerr.New(grpcerr.Info{Code: codes.NotFound, Reason: "JOB_NOT_FOUND", Message: "job j1: job not found"})
)

type failingOrchestrator struct {
	orchestratorv1.UnimplementedOrchestratorServiceServer
}

func (failingOrchestrator) GenerateImage(*orchestratorv1.GenerateImageRequest, grpc.ServerStreamingServer[orchestratorv1.GenerateImageResponse]) error {
	return errQueueFull
}

func (failingOrchestrator) CreateImage(context.Context, *orchestratorv1.CreateImageRequest) (*orchestratorv1.CreateImageResponse, error) {
	return nil, errNotRunning
}

func (failingOrchestrator) GetJob(context.Context, *orchestratorv1.GetJobRequest) (*orchestratorv1.GetJobResponse, error) {
	return nil, errNoJob
}

// failingLLM's chat sends one delta, then fails; its downloads fail before any progress
// (model "missing") or after one progress message.
type failingLLM struct {
	llmv1.UnimplementedLLMServiceServer
	modelsv1.UnimplementedModelServiceServer
}

func (failingLLM) Chat(_ *llmv1.ChatRequest, s grpc.ServerStreamingServer[llmv1.ChatResponse]) error {
	if err := s.Send(&llmv1.ChatResponse{Event: &llmv1.ChatResponse_Delta{Delta: &llmv1.ChatDelta{Content: "Hel"}}}); err != nil {
		return err
	}
	return errWentAway
}

func (failingLLM) DownloadModel(r *modelsv1.DownloadModelRequest, s grpc.ServerStreamingServer[modelsv1.DownloadModelResponse]) error {
	if r.GetId() == "missing" {
		return errNoSource
	}
	if err := s.Send(&modelsv1.DownloadModelResponse{Event: &modelsv1.DownloadModelResponse_Progress{Progress: &modelsv1.DownloadProgress{DownloadId: "d1", ModelId: r.GetId()}}}); err != nil {
		return err
	}
	return grpcerr.New(grpcerr.Info{Code: codes.Unavailable, Reason: "DOWNLOAD_INTERRUPTED", Message: "download interrupted: connection reset"})
}

// startFailingGateway serves the failing backends behind a gateway.
func startFailingGateway(t *testing.T, maxBody int64) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	orchestratorv1.RegisterOrchestratorServiceServer(gs, failingOrchestrator{})
	llmv1.RegisterLLMServiceServer(gs, failingLLM{})
	modelsv1.RegisterModelServiceServer(gs, failingLLM{})
	go gs.Serve(lis)
	addr := lis.Addr().String()
	g, err := gateway.New(context.Background(), gateway.Options{Backends: gateway.Backends{LLM: addr, Orchestrator: addr}, MaxBodyBytes: maxBody})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(g)
	t.Cleanup(func() {
		hs.Close()
		g.Close()
		gs.Stop()
	})
	return hs.URL
}

type errorBody struct {
	Error  any    `json:"error"`
	Code   string `json:"code"`
	Reason string `json:"reason"`
}

func do(t *testing.T, method, url, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func decodeError(t *testing.T, b []byte) errorBody {
	t.Helper()
	var e errorBody
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("not an error JSON: %v: %s", err, b)
	}
	return e
}

// Issue 14 item 11: a stream refused before its first message answered 200-ish chunks of
// {"error":{"code":8,...}}; it gets the status of its code, the server's Retry-After and the
// REST error body.
func TestStreamErrorBeforeFirstMessageGetsStatus(t *testing.T) {
	url := startFailingGateway(t, 0)
	resp, b := do(t, "POST", url+"/v1/images/generate", `{"params":{"prompt":"a fox"}}`)
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	if ra := resp.Header.Get("Retry-After"); ra != "3" {
		t.Errorf("Retry-After %q, want the orchestrator's 3 s", ra)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	e := decodeError(t, b)
	if e.Error != "the image queue is full (8 jobs)" || e.Code != "RESOURCE_EXHAUSTED" || e.Reason != grpcerr.ReasonQueueFull {
		t.Errorf("body %s", b)
	}
	if n := strings.Count(strings.TrimSpace(string(b)), "\n"); n != 0 {
		t.Errorf("%d extra lines: %s", n, b)
	}

	// A model download refused before any progress: 404.
	resp, b = do(t, "POST", url+"/v1/models/download", `{"type":"MODEL_TYPE_LLM","id":"missing","source":{"url":"https://example.com/x.gguf"}}`)
	if e := decodeError(t, b); resp.StatusCode != 404 || e.Reason != "SOURCE_NOT_FOUND" || e.Code != "NOT_FOUND" {
		t.Errorf("download: %d %s", resp.StatusCode, b)
	}
}

// Issue 14 item 11: an error after the first message ends the stream with one NDJSON line
// {"error": "...", "code": "...", "reason": "..."} (the status is 200 by then).
func TestStreamErrorMidStreamEndsWithOneErrorLine(t *testing.T) {
	url := startFailingGateway(t, 0)
	for _, c := range []struct {
		name, path, body, code, reason, message string
	}{
		{"chat", "/v1/llm/chat", `{"messages":[{"role":"user","content":"hello"}]}`, "UNAVAILABLE", "ENGINE_WENT_AWAY", "llm server went away during the request"},
		{"download", "/v1/models/download", `{"type":"MODEL_TYPE_LLM","id":"m","source":{"url":"https://example.com/x.gguf"}}`, "UNAVAILABLE", "DOWNLOAD_INTERRUPTED", "download interrupted: connection reset"},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, b := do(t, "POST", url+c.path, c.body)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, b)
			}
			var lines []string
			sc := bufio.NewScanner(strings.NewReader(string(b)))
			for sc.Scan() {
				if l := strings.TrimSpace(sc.Text()); l != "" {
					lines = append(lines, l)
				}
			}
			if len(lines) != 2 || !strings.HasPrefix(lines[0], `{"result":`) {
				t.Fatalf("lines %q", lines)
			}
			var last map[string]any
			if err := json.Unmarshal([]byte(lines[1]), &last); err != nil {
				t.Fatal(err)
			}
			if len(last) != 3 || last["error"] != c.message || last["code"] != c.code || last["reason"] != c.reason {
				t.Errorf("last line %s", lines[1])
			}
		})
	}
}

// The REST routes add "code" and "reason" next to the seed's "error"; the seed's own route
// keeps exactly {"error": "..."}. The engine "not running" (FAILED_PRECONDITION) is 503 with
// Retry-After here, as on the seed wrapper (it was 400 through the gateway).
func TestRESTErrorBodyHasCodeAndReason(t *testing.T) {
	url := startFailingGateway(t, 0)
	resp, b := do(t, "GET", url+"/v1/images/jobs/j1", "")
	if e := decodeError(t, b); resp.StatusCode != 404 || e.Error != "job j1: job not found" || e.Code != "NOT_FOUND" || e.Reason != "JOB_NOT_FOUND" {
		t.Errorf("GetJob: %d %s", resp.StatusCode, b)
	}
	resp, b = do(t, "POST", url+"/v1/images/generations", `{"prompt":"x"}`)
	var seed map[string]any
	_ = json.Unmarshal(b, &seed)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || len(seed) != 1 || !strings.Contains(seed["error"].(string), "not running") {
		t.Errorf("seed route, engine not running: %d %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
}

// Issue 14 item 12, on the gateway: a URL that is not valid UTF-8 is a 400 with the error JSON
// (it used to fail in the gRPC client's marshalling: 500).
func TestGatewayInvalidUTF8QueryIs400(t *testing.T) {
	url := startFailingGateway(t, 0)
	for _, target := range []string{"/v1/images/jobs?pageToken=%ff", "/v1/images/jobs/%ff%fe", "/v1/images/generations?x=%c3%28"} {
		resp, b := do(t, "GET", url+target, "")
		if e := decodeError(t, b); resp.StatusCode != 400 || e.Error == "" {
			t.Errorf("%s: %d %s", target, resp.StatusCode, b)
		}
	}
}

// Issue 14 item 12, on the gateway: 404 and 405 are JSON, in the shape of their route.
func TestGatewayRoutingErrorsAreJSON(t *testing.T) {
	url := startFailingGateway(t, 0)
	resp, b := do(t, "DELETE", url+"/v1/llm/chat", "")
	if e := decodeError(t, b); resp.StatusCode != 405 || e.Reason != "METHOD_NOT_ALLOWED" {
		t.Errorf("405: %d %s", resp.StatusCode, b)
	}
	resp, b = do(t, "GET", url+"/v1/images/generations", "")
	var seed map[string]any
	_ = json.Unmarshal(b, &seed)
	if resp.StatusCode != 405 || len(seed) != 1 || seed["error"] == nil {
		t.Errorf("405 on the seed route: %d %s", resp.StatusCode, b)
	}
	resp, b = do(t, "GET", url+"/v1/nope", "")
	if e := decodeError(t, b); resp.StatusCode != 404 || e.Reason != "NO_SUCH_ROUTE" {
		t.Errorf("404: %d %s", resp.StatusCode, b)
	}
}

// 413 is told from the body reader's *http.MaxBytesError, also when the request gives no
// Content-Length (grpc-gateway reports the read error as InvalidArgument text), on a unary
// and on a streaming route.
func TestBodyTooLargeWithoutContentLengthIs413(t *testing.T) {
	url := startFailingGateway(t, 64)
	for _, path := range []string{"/v1/models/download", "/v1/llm/chat", "/v1/images/generations"} {
		pr, pw := io.Pipe()
		go func() {
			_, _ = io.WriteString(pw, `{"prompt":"`+strings.Repeat("a", 1000)+`"}`)
			pw.Close()
		}()
		req, _ := http.NewRequest("POST", url+path, pr) // no ContentLength: chunked
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), "too large") {
			t.Errorf("%s: %d %s", path, resp.StatusCode, b)
		}
	}
}

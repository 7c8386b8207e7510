package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/pkg/grpcserver"
	"github.com/genailab/genailab/services/gateway/internal/gateway"
)

// recordingOrchestrator is a real gRPC OrchestratorService (served over loopback) whose
// answers the test chooses and which records what the gateway sent it: the test pins the
// gateway's translation between the seed's JSON and the gRPC messages.
type recordingOrchestrator struct {
	orchestratorv1.UnimplementedOrchestratorServiceServer
	mu       sync.Mutex
	lastReq  *orchestratorv1.CreateImageRequest
	response *orchestratorv1.CreateImageResponse
	err      error
	busy     bool
}

func (o *recordingOrchestrator) CreateImage(_ context.Context, req *orchestratorv1.CreateImageRequest) (*orchestratorv1.CreateImageResponse, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.lastReq = req
	return o.response, o.err
}

func (o *recordingOrchestrator) GetHealth(context.Context, *orchestratorv1.GetHealthRequest) (*orchestratorv1.GetHealthResponse, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return &orchestratorv1.GetHealthResponse{Status: "ok", Busy: o.busy}, nil
}

func startGateway(t testing.TB, orch orchestratorv1.OrchestratorServiceServer, token string) string {
	t.Helper()
	return startGatewayWith(t, orch, gateway.Options{Token: token})
}

// startGatewayWith is startGateway with more options (Backends is filled in).
func startGatewayWith(t testing.TB, orch orchestratorv1.OrchestratorServiceServer, opts gateway.Options) string {
	t.Helper()
	s, err := grpcserver.Listen(grpcserver.Options{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	orchestratorv1.RegisterOrchestratorServiceServer(s.GRPC(), orch)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	opts.Backends = gateway.Backends{Orchestrator: s.Addr()}
	g, err := gateway.New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(g)
	t.Cleanup(func() {
		hs.Close()
		g.Close()
		cancel()
		<-done
	})
	return hs.URL
}

func golden(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sameJSON compares JSON documents by value and by type: a number must stay a number
// (grpc-gateway writes int64 as strings, which the seed contract forbids).
func sameJSON(t *testing.T, got, want []byte) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("response is not JSON: %v\n%s", err, got)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("JSON differs\n got: %s\nwant: %s", bytes.TrimSpace(got), bytes.TrimSpace(want))
	}
}

func post(t *testing.T, url string, body []byte) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestSeedContractRequestAndResponse(t *testing.T) {
	seed := int64(12345)
	cfg := float32(7.5)
	orch := &recordingOrchestrator{response: &orchestratorv1.CreateImageResponse{
		Image: []byte("\x89PNG\r\n\x1a\n"), Format: "png", TimeTakenMs: 45678, Seed: 12345, Width: 1024, Height: 1024,
	}}
	url := startGateway(t, orch, "")
	resp, body := post(t, url+"/v1/images/generations", golden(t, "create_image_request.json"))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q", ct)
	}
	sameJSON(t, body, golden(t, "create_image_response.json"))
	want := &orchestratorv1.CreateImageRequest{
		Prompt: "a red fox in the snow", NegativePrompt: "blurry", Width: proto.Int32(1024), Height: proto.Int32(1024),
		Steps: proto.Int32(30), CfgScale: &cfg, Seed: &seed, Sampler: "dpm++2m",
	}
	if !proto.Equal(orch.lastReq, want) {
		t.Fatalf("gRPC request\n got: %v\nwant: %v", orch.lastReq, want)
	}
}

func TestSeedContractOmittedFieldsStayUnset(t *testing.T) {
	orch := &recordingOrchestrator{response: &orchestratorv1.CreateImageResponse{Format: "png"}}
	url := startGateway(t, orch, "")
	resp, body := post(t, url+"/v1/images/generations", []byte(`{"prompt":"x"}`))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if orch.lastReq.Seed != nil || orch.lastReq.CfgScale != nil {
		t.Fatalf("absent seed/cfgScale must stay unset (random seed, default cfg): %v", orch.lastReq)
	}
}

func TestSeedContractErrors(t *testing.T) {
	cases := []struct {
		name   string
		err    error
		body   string
		status int
		golden string
	}{
		{"busy", status.Error(codes.Unavailable, "Server is busy generating another image"), "", 503, "error_busy.json"},
		{"invalid", status.Error(codes.InvalidArgument, "width must be a multiple of 64 between 64 and 2048, got 100"), "", 400, "error_invalid.json"},
		{"engine failure", status.Error(codes.Internal, "sd-cli exited with code 1: out of memory"), "", 500, "error_internal.json"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			url := startGateway(t, &recordingOrchestrator{err: c.err}, "")
			resp, body := post(t, url+"/v1/images/generations", []byte(`{"prompt":"x"}`))
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, body)
			}
			sameJSON(t, body, golden(t, c.golden))
			if c.status == 503 && resp.Header.Get("Retry-After") == "" {
				t.Error("503 must carry Retry-After")
			}
		})
	}
}

func TestMalformedRequestsAre400WithErrorJSON(t *testing.T) {
	url := startGateway(t, &recordingOrchestrator{}, "")
	for _, body := range []string{`{"prompt":`, `{"prompt":"x","width":"wide"}`, `{"prompt":"x","unknownField":1}`, `[1,2]`} {
		resp, b := post(t, url+"/v1/images/generations", []byte(body))
		var e struct{ Error string }
		if resp.StatusCode != 400 || json.Unmarshal(b, &e) != nil || e.Error == "" {
			t.Errorf("%s: status %d body %s, want 400 {\"error\":...}", body, resp.StatusCode, b)
		}
	}
}

func TestBodyTooLarge(t *testing.T) {
	url := startGateway(t, &recordingOrchestrator{}, "")
	big := `{"prompt":"` + strings.Repeat("a", gateway.DefaultMaxBodyBytes) + `"}`
	resp, b := post(t, url+"/v1/images/generations", []byte(big))
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), `"error"`) {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
}

func TestHealthShape(t *testing.T) {
	url := startGateway(t, &recordingOrchestrator{}, "")
	resp, err := http.Get(url + "/health")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	sameJSON(t, b, golden(t, "health.json"))
}

func TestUnknownRouteAndOpenAPI(t *testing.T) {
	url := startGateway(t, &recordingOrchestrator{}, "")
	resp, err := http.Get(url + "/v1/nope")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 || !strings.Contains(string(b), `"error"`) {
		t.Fatalf("unknown route: %d %s", resp.StatusCode, b)
	}
	resp, err = http.Get(url + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Swagger string         `json:"swagger"`
		Paths   map[string]any `json:"paths"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/v1/images/generations", "/health", "/v1/llm/chat", "/v1/models", "/v1/system"} {
		if _, ok := doc.Paths[p]; !ok {
			t.Errorf("openapi.json lacks %s", p)
		}
	}
}

func TestModelsNeedAType(t *testing.T) {
	url := startGateway(t, &recordingOrchestrator{}, "")
	resp, err := http.Get(url + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 400 || !strings.Contains(string(b), "type is required") {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	resp2, err := http.Get(url + "/v1/models?type=MODEL_TYPE_LLM")
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	if resp2.StatusCode != 503 {
		t.Fatalf("no llm backend configured: want 503, got %d", resp2.StatusCode)
	}
}

func TestGatewayToken(t *testing.T) {
	url := startGateway(t, &recordingOrchestrator{response: &orchestratorv1.CreateImageResponse{}}, "tok")
	resp, _ := post(t, url+"/v1/images/generations", []byte(`{"prompt":"x"}`))
	if resp.StatusCode != 401 {
		t.Fatalf("no token: %d", resp.StatusCode)
	}
	r, err := http.Get(url + "/health")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 200 {
		t.Fatalf("health must stay open: %d", r.StatusCode)
	}
	req, _ := http.NewRequest("POST", url+"/v1/images/generations", strings.NewReader(`{"prompt":"x"}`))
	req.Header.Set("Authorization", "Bearer tok")
	r, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 200 {
		t.Fatalf("with token: %d", r.StatusCode)
	}
}

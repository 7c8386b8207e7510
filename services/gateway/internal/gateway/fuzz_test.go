package gateway_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/pkg/grpcerr"
	"github.com/genailab/genailab/pkg/imagereq"
)

// validatingOrchestrator answers CreateImage as the orchestrator does at its edge: the one
// image-request validator first (InvalidArgument with the reason), then an "image" that
// is the prompt's bytes, so that the answer can be checked against the request.
type validatingOrchestrator struct {
	orchestratorv1.UnimplementedOrchestratorServiceServer
	mu   sync.Mutex
	last *orchestratorv1.CreateImageRequest
}

func (o *validatingOrchestrator) CreateImage(_ context.Context, r *orchestratorv1.CreateImageRequest) (*orchestratorv1.CreateImageResponse, error) {
	o.mu.Lock()
	o.last = proto.CloneOf(r)
	o.mu.Unlock()
	p := &diffusionv1.ImageParams{Prompt: r.Prompt, NegativePrompt: r.NegativePrompt, Width: r.Width, Height: r.Height,
		Steps: r.Steps, CfgScale: r.CfgScale, Seed: r.Seed, Sampler: r.Sampler}
	if err := imagereq.Validate(p); err != nil {
		return nil, grpcerr.Status(grpcerr.Invalidf("%s", err.Error()))
	}
	return &orchestratorv1.CreateImageResponse{Image: []byte(r.Prompt), Format: "png", TimeTakenMs: 1,
		Seed: uint32(max(r.GetSeed(), 0)), Width: max(r.GetWidth(), 512), Height: max(r.GetHeight(), 512)}, nil
}

func (o *validatingOrchestrator) take() *orchestratorv1.CreateImageRequest {
	o.mu.Lock()
	defer o.mu.Unlock()
	r := o.last
	o.last = nil
	return r
}

// seedErrorShape checks the seed's error body: exactly {"error": "<a reason>"}.
func seedErrorShape(t *testing.T, body []byte) {
	t.Helper()
	var e map[string]any
	if err := json.Unmarshal(body, &e); err != nil || len(e) != 1 {
		t.Fatalf("error body is not {\"error\": ...}: %s", body)
	}
	if s, ok := e["error"].(string); !ok || strings.TrimSpace(s) == "" {
		t.Fatalf("error body without a reason: %s", body)
	}
}

// Issue 14's fault suite, the gateway's seed route: any body POSTed to
// /v1/images/generations over real HTTP, through the grpc-gateway translation and a real
// gRPC hop. The answer is 200 with the seed's result for the request sent (which, written
// back as JSON, is sent again unchanged), or 400/413 with {"error": "<reason>"}: never a
// 5xx, never another shape. The corpus is in testdata/fuzz.
func FuzzSeedCreateImage(f *testing.F) {
	for _, s := range []string{
		`{"prompt":"a red fox in the snow","negativePrompt":"blurry","width":1024,"height":1024,"steps":30,"cfgScale":7.5,"seed":12345,"sampler":"dpm++2m"}`,
		`{"prompt":"x"}`,
		`{"prompt":"x","width":0,"height":0,"steps":0}`,
		`{"prompt":"x","seed":0,"cfgScale":0}`,
		`{"prompt":"x","seed":4294967296}`,
		`{"prompt":"x","seed":-1}`,
		`{"prompt":"x","seed":1e400}`,
		`{"prompt":"x","width":99999999999999999999}`,
		`{"prompt":"x","steps":-2147483648}`,
		`{"prompt":"x","cfgScale":"NaN"}`,
		`{"prompt":"x","cfgScale":"Infinity"}`,
		`{"prompt":"nul\u0000"}`,
		"{\"prompt\":\"\xff\xfe\"}",
		`{"prompt":"\ud800"}`,
		`{"prompt":"x","unknownField":1}`,
		`{"prompt":"x","prompt":"y"}`,
		`{"prompt":null,"width":null}`,
		`[1,2]`, `null`, ``, `{`, `"x"`, `{"prompt":{"a":1}}`,
	} {
		f.Add([]byte(s))
	}
	orch := &validatingOrchestrator{}
	url := startGateway(f, orch, "") + "/v1/images/generations"
	send := func(t *testing.T, body []byte) (int, []byte) {
		resp, err := http.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return resp.StatusCode, b.Bytes()
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		status, answer := send(t, body)
		got := orch.take()
		switch status {
		case http.StatusOK:
			if got == nil || !json.Valid(body) {
				t.Fatalf("200 for %q (backend called: %v): %s", body, got != nil, answer)
			}
			var res map[string]any
			if err := json.Unmarshal(answer, &res); err != nil {
				t.Fatalf("200 body is not JSON: %s", answer)
			}
			keys := make([]string, 0, len(res))
			for k := range res {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			if want := []string{"format", "height", "image", "seed", "timeTaken", "width"}; !slices.Equal(keys, want) {
				t.Fatalf("result keys %v, want the seed's %v", keys, want)
			}
			for _, k := range []string{"height", "seed", "timeTaken", "width"} {
				if n, ok := res[k].(float64); !ok || n < 0 || n > math.MaxUint32 {
					t.Fatalf("%s is %v, want a JSON number", k, res[k])
				}
			}
			img, err := base64.StdEncoding.DecodeString(res["image"].(string))
			if err != nil || string(img) != got.GetPrompt() {
				t.Fatalf("image %q for prompt %q (%v)", img, got.GetPrompt(), err)
			}
			// Round trip: the request as the backend got it, written as JSON, is sent again
			// unchanged.
			again, err := protojson.Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			if st, b := send(t, again); st != http.StatusOK {
				t.Fatalf("the accepted request %s, sent again: %d %s", again, st, b)
			}
			if got2 := orch.take(); !proto.Equal(got2, got) {
				t.Fatalf("round trip: %v, want %v", got2, got)
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			seedErrorShape(t, answer)
			if got != nil && imagereq.Validate(&diffusionv1.ImageParams{Prompt: got.Prompt, NegativePrompt: got.NegativePrompt,
				Width: got.Width, Height: got.Height, Steps: got.Steps, CfgScale: got.CfgScale, Seed: got.Seed, Sampler: got.Sampler}) == nil {
				t.Fatalf("a valid request %v was refused: %s", got, answer)
			}
		default:
			t.Fatalf("status %d for %q: %s", status, body, answer)
		}
	})
}

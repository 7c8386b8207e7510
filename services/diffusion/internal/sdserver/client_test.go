package sdserver

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/genailab/genailab/pkg/imagereq"
	"github.com/genailab/genailab/services/diffusion/internal/sdargs"
)

func TestBody(t *testing.T) {
	b, err := Body(imagereq.Params{Prompt: "a fox", NegativePrompt: "blur", Width: 64, Height: 128, Steps: 4, CFGScale: 7.5, Seed: 9, Sampler: "dpm++2m"})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"prompt": "a fox", "negative_prompt": "blur", "width": 64.0, "height": 128.0, "seed": 9.0,
		"batch_count": 1.0, "output_format": "png",
		"sample_params": map[string]any{"sample_steps": 4.0, "sample_method": "dpm++2m", "guidance": map[string]any{"txt_cfg": 7.5}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("body %s", b)
	}
}

func TestArgs(t *testing.T) {
	got := Args(sdargs.Model{Path: "m.gguf", VAE: "v"}, sdargs.Memory{VAETiling: true}, 4, "127.0.0.1", 1234)
	want := []string{"-m", "m.gguf", "--vae", "v", "--listen-ip", "127.0.0.1", "--listen-port", "1234", "-t", "4", "--vae-tiling"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q", got)
	}
}

// The error bodies are sd-server's, from the reference captures (25-cancel-generating,
// 50-queuefull-429, 12-get-job-unknown).
func TestErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/sdcpp/v1/jobs/busy/cancel":
			w.WriteHeader(409)
			w.Write([]byte(`{"error":"job is currently generating and cannot be interrupted yet"}`))
		case "/sdcpp/v1/img_gen":
			w.WriteHeader(429)
			w.Write([]byte(`{"error":"job queue is full"}`))
		default:
			w.WriteHeader(404)
			w.Write([]byte(`{"error":"job not found"}`))
		}
	}))
	defer srv.Close()
	c := &Client{Base: srv.URL, HTTP: srv.Client()}
	ctx := context.Background()
	if _, err := c.Cancel(ctx, "busy"); !errors.Is(err, ErrGenerating) {
		t.Errorf("409: %v", err)
	}
	if _, err := c.Submit(ctx, imagereq.Params{Prompt: "x"}); !errors.Is(err, ErrQueueFull) {
		t.Errorf("429: %v", err)
	}
	if _, err := c.Job(ctx, "job_doesnotexist"); !errors.Is(err, ErrJobNotFound) || err.Error() != "poll job job_doesnotexist: sd-server job not found: job not found" {
		t.Errorf("404: %v", err)
	}
}

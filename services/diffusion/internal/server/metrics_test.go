package server

import (
	"context"
	"path/filepath"
	"testing"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	"github.com/genailab/genailab/pkg/metricsserver"
	"github.com/genailab/genailab/pkg/metricsserver/metricstest"
)

// An image through the gRPC API shows on /metrics: the images by model, size and outcome,
// the engine time, one step time per step after the first, and the engine's state; a
// request refused by validation adds no series (its size could be anything). The
// exposition's shape is the golden file's.
func TestMetricsOfAnImage(t *testing.T) {
	file := filepath.Join(t.TempDir(), "metrics.addr")
	var errc chan error
	s := startService(t, func(o *Options) { o.Metrics = metricsserver.Options{Addr: "127.0.0.1:0", AddrFile: file} })
	s.start(t, diffusionv1.EngineMode_ENGINE_MODE_CLI)
	if g := generate(context.Background(), s.client, fox(64, 64, 4), nil); g.err != nil {
		t.Fatal(g.err)
	}
	if g := generate(context.Background(), s.client, &diffusionv1.ImageParams{}, nil); code(g.err) == 0 {
		t.Fatal("an image without a prompt was accepted")
	}
	fams := metricstest.Golden(t, "http://"+waitFile(t, file, errc)+"/metrics", filepath.Join("testdata", "metrics.golden"))
	img := map[string]string{"model": DemoModelID, "size": "64x64"}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"genailab_diffusion_images_total", map[string]string{"model": DemoModelID, "size": "64x64", "outcome": "ok"}, 1},
		{"genailab_diffusion_engine_seconds", img, 1},
		{"genailab_diffusion_step_seconds", img, 3},
		{"genailab_diffusion_engine_busy", nil, 0},
		{"genailab_diffusion_engine_model_info", map[string]string{"model": DemoModelID, "demo": "true"}, 1},
		{"genailab_scrape_collector_success", map[string]string{"collector": "engine"}, 1},
	} {
		if got := metricstest.Value(t, fams, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if n := len(fams["genailab_diffusion_images_total"].GetMetric()); n != 1 {
		t.Errorf("%d image series, want 1 (the refused request counts nowhere)", n)
	}
}

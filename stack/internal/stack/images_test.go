package stack_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"image"
	"image/png"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/genailab/genailab/pkg/testenv"
	"github.com/genailab/genailab/stack/internal/stack"
)

// realStack starts the whole stack on the real stable-diffusion.cpp with the tiny model, in mode.
func realStack(t testing.TB, bin, mode string) (*stack.Stack, *syncWriter) {
	t.Helper()
	sd := testenv.RequireRealSD(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	data := t.TempDir()
	model, source, err := stack.EnsureDiffusionModel(ctx, data, "", sd.Model)
	if err != nil {
		t.Fatal(err)
	}
	choice := stack.ChooseDiffusion(stack.DiffusionFacts{SDCLI: sd.CLI, SDServer: sd.Server, Source: "test", Model: model, ModelSource: source})
	logs := &syncWriter{w: &bytes.Buffer{}}
	s, err := stack.Start(ctx, stack.Options{DataDir: data, BinDir: bin, Ephemeral: true, Diffusion: choice, DiffusionMode: mode, LogOutput: logs})
	if err != nil {
		t.Fatalf("start stack: %v\n%s", err, logs.String())
	}
	t.Cleanup(func() { s.Stop(context.Background()) })
	return s, logs
}

type seedImage struct {
	Image  string  `json:"image"`
	Seed   float64 `json:"seed"`
	Width  float64 `json:"width"`
	Height float64 `json:"height"`
}

func postSeed(t testing.TB, url, body string) seedImage {
	t.Helper()
	resp, err := http.Post(url+"/v1/images/generations", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST %s: %d %s", url, resp.StatusCode, b)
	}
	var out seedImage
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func decode(t testing.TB, b64 string) image.Image {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// Server mode end to end: the seed contract through the gateway, the orchestrator and a
// persistent real sd-server, and the same image from the diffusion service's own seed wrapper.
func TestStackImagesInServerMode(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts every service")
	}
	s, logs := realStack(t, buildServices(t), "server")
	gw, wrapper := "http://"+s.Addr("gateway"), "http://"+s.Addr("diffusion-http")
	resp, err := http.Get(gw + "/v1/diffusion")
	if err != nil {
		t.Fatal(err)
	}
	info, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(info), `"mode":"ENGINE_MODE_SERVER"`) || !strings.Contains(string(info), `"demoEngine":false`) {
		t.Fatalf("GET /v1/diffusion: %s", info)
	}
	req := `{"prompt":"a red fox","width":64,"height":64,"steps":3,"seed":7}`
	a := postSeed(t, gw, req)
	b := postSeed(t, wrapper, req)
	if a.Seed != 7 || a.Width != 64 || b.Seed != 7 {
		t.Fatalf("responses %+v %+v", a.Seed, b.Seed)
	}
	ia, ib := decode(t, a.Image), decode(t, b.Image)
	for y := 0; y < 64; y++ {
		for x := 0; x < 64; x++ {
			if ia.At(x, y) != ib.At(x, y) {
				t.Fatalf("gateway and seed wrapper gave other pixels for one seed\n%s", logs.String())
			}
		}
	}
}

// BenchmarkRealGatewayVsSeedWrapper: one seed-contract image (64x64, 4 steps, real sd-cli) through
// the gateway → orchestrator → diffusion service ÷ the diffusion service's own seed wrapper;
// alternated, medians.
func BenchmarkRealGatewayVsSeedWrapper(b *testing.B) {
	bin := b.TempDir()
	buildInto(b, bin)
	s, _ := realStack(b, bin, "cli")
	gw, wrapper := "http://"+s.Addr("gateway"), "http://"+s.Addr("diffusion-http")
	req := `{"prompt":"a red fox","width":64,"height":64,"steps":4,"seed":1}`
	postSeed(b, gw, req) // warm both paths
	postSeed(b, wrapper, req)
	var viaGW, direct []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		postSeed(b, wrapper, req)
		direct = append(direct, time.Since(t0))
		t0 = time.Now()
		postSeed(b, gw, req)
		viaGW = append(viaGW, time.Since(t0))
	}
	b.StopTimer()
	med := func(d []time.Duration) time.Duration {
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return d[len(d)/2]
	}
	ratio := float64(med(viaGW)) / float64(med(direct))
	b.ReportMetric(ratio, "gateway/wrapper")
	b.ReportMetric(float64(med(viaGW)-med(direct))/1e6, "extra-ms")
	b.Logf("gateway %s, seed wrapper %s (medians of %d alternated pairs): %.3f×", med(viaGW), med(direct), len(viaGW), ratio)
}

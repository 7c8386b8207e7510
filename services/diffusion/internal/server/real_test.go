package server

// The diffusion service on the real stable-diffusion.cpp (testenv: ../shared/engines/sdcpp or
// GENAILAB_SDCPP_DIR, with the tiny model imported into the service's model store), through gRPC
// (with the progress stream) and through the seed HTTP wrapper, in both engine modes.

import (
	"bytes"
	"context"
	"encoding/base64"
	"image/png"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	"github.com/genailab/genailab/pkg/modelstore"
	"github.com/genailab/genailab/pkg/testenv"
)

const realModelID = "tinysd"

// startRealService runs the service on the real sd.cpp with the tiny model imported as
// realModelID.
func startRealService(t testing.TB, mutate func(*Options)) *service {
	t.Helper()
	sd := testenv.RequireRealSD(t)
	return startService(t, func(o *Options) {
		o.DemoEngines, o.DemoDir, o.Env = false, "", nil
		o.SDCLI, o.SDServer = sd.CLI, sd.Server
		o.StallTimeout = 60 * time.Second
		store, err := modelstore.Open(modelstore.Options{DataDir: o.DataDir, Type: modelstore.TypeDiffusion})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store.Import(context.Background(), realModelID, "tiny random-weight SD (test model)", sd.Model); err != nil {
			t.Fatal(err)
		}
		if mutate != nil {
			mutate(o)
		}
	})
}

func (s *service) startReal(t *testing.T, mode diffusionv1.EngineMode) *diffusionv1.DiffusionInfo {
	t.Helper()
	resp, err := s.client.Start(context.Background(), &diffusionv1.StartRequest{Config: &diffusionv1.DiffusionConfig{Mode: mode, ModelId: realModelID, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetInfo()
}

var realModes = []diffusionv1.EngineMode{diffusionv1.EngineMode_ENGINE_MODE_CLI, diffusionv1.EngineMode_ENGINE_MODE_SERVER}

func modeName(m diffusionv1.EngineMode) string {
	return strings.ToLower(strings.TrimPrefix(m.String(), "ENGINE_MODE_"))
}

// everyStep asserts that each sampling step 1..steps reached the client as its own message.
func everyStep(t *testing.T, ps []*diffusionv1.Progress, steps int32) {
	t.Helper()
	var seen []int32
	for _, p := range ps {
		if p.Stage == diffusionv1.Stage_STAGE_SAMPLING && p.Step > 0 && (len(seen) == 0 || seen[len(seen)-1] != p.Step) {
			seen = append(seen, p.Step)
		}
	}
	for i := int32(1); i <= steps; i++ {
		if int(i) > len(seen) || seen[i-1] != i {
			t.Fatalf("sampling steps seen %v, want each of 1..%d in order", seen, steps)
		}
	}
}

// The seed's checklist through gRPC on the real engine, in both modes: start, status, a
// generation with its progress stream, busy, cancel (no crash, next job works), stop.
func TestRealGRPCChecklist(t *testing.T) {
	for _, mode := range realModes {
		t.Run(modeName(mode), func(t *testing.T) {
			s := startRealService(t, nil)
			ctx := context.Background()
			if g := generate(ctx, s.client, fox(64, 64, 2), nil); code(g.err) != codes.FailedPrecondition {
				t.Errorf("generate while stopped: %v", g.err)
			}
			info := s.startReal(t, mode)
			if info.DemoEngine || info.ModelId != realModelID || info.Status.String() != "SERVER_STATUS_RUNNING" || info.Health.String() != "HEALTH_STATUS_OK" {
				t.Fatalf("info after start: %v", info)
			}
			if mode == diffusionv1.EngineMode_ENGINE_MODE_SERVER && (info.Pid == 0 || info.Port == 0) {
				t.Errorf("server mode without pid/port: %v", info)
			}

			g := generate(ctx, s.client, fox(64, 128, 4), nil)
			if g.err != nil {
				t.Fatal(g.err)
			}
			checkProgress(t, g.progress, 4)
			everyStep(t, g.progress, 4)
			var stages []string
			for _, p := range g.progress {
				if n := strings.TrimPrefix(p.Stage.String(), "STAGE_"); len(stages) == 0 || stages[len(stages)-1] != n {
					stages = append(stages, n)
				}
			}
			// sd-server keeps the weights between jobs: this first job loads them.
			if got := strings.Join(stages, ","); !strings.HasSuffix(got, "LOADING,ENCODING,SAMPLING,DECODING,DONE") {
				t.Errorf("stages %s", got)
			}
			if mode == diffusionv1.EngineMode_ENGINE_MODE_SERVER {
				if g.progress[0].Stage != diffusionv1.Stage_STAGE_QUEUED {
					t.Errorf("first progress %v, want queued (sd-server's job queue)", g.progress[0])
				}
				if g := generate(ctx, s.client, fox(64, 64, 101), nil); code(g.err) != codes.InvalidArgument {
					t.Errorf("101 steps in server mode: %v", g.err)
				}
			}
			checkPNG(t, g.result.Png, 64, 128)
			if g.result.Seed != 42 || g.result.DemoEngine || g.result.TimeTakenMs <= 0 || g.result.Params.GetSampler() != "euler_a" {
				t.Errorf("result %v", g.result.Params)
			}

			// Busy, then cancel mid-sampling.
			done := generateUntilSampling(t, ctx, s.client)
			in, _ := s.client.GetInfo(ctx, &diffusionv1.GetInfoRequest{})
			if !in.Info.Busy || in.Info.Pid == 0 || in.Info.Current.GetStage() != diffusionv1.Stage_STAGE_SAMPLING {
				t.Errorf("info while generating: %v", in.Info)
			}
			g2 := generate(ctx, s.client, fox(64, 64, 2), nil)
			if st := status.Convert(g2.err); st.Code() != codes.Unavailable || st.Message() != "Server is busy generating another image" {
				t.Errorf("concurrent generation: %v", g2.err)
			}
			if c, err := s.client.CancelGeneration(ctx, &diffusionv1.CancelGenerationRequest{}); err != nil || !c.Cancelled {
				t.Fatalf("cancel: %v %v", c, err)
			}
			if g := <-done; code(g.err) != codes.Canceled || status.Convert(g.err).Message() != "generation cancelled" {
				t.Errorf("cancelled stream: %v", g.err)
			}
			if mode == diffusionv1.EngineMode_ENGINE_MODE_CLI {
				assertNoProcess(t, int(in.Info.Pid), s.tmp)
			}
			after, _ := s.client.GetInfo(ctx, &diffusionv1.GetInfoRequest{})
			if st := after.Info.Status.String(); st == "SERVER_STATUS_CRASHED" || after.Info.LastError != "" || after.Info.Health.String() == "HEALTH_STATUS_ERROR" {
				t.Errorf("a cancel is not a crash: %v", after.Info)
			}
			if g := generate(ctx, s.client, fox(64, 64, 2), nil); g.err != nil {
				t.Fatalf("generation after the cancel: %v", g.err)
			}
			stop, err := s.client.Stop(ctx, &diffusionv1.StopRequest{})
			if err != nil || stop.Info.Status.String() != "SERVER_STATUS_STOPPED" {
				t.Fatalf("stop: %v %v", stop, err)
			}
			if mode == diffusionv1.EngineMode_ENGINE_MODE_SERVER && procAlive(after.Info.Pid) {
				t.Errorf("sd-server %d alive after stop", after.Info.Pid)
			}
		})
	}
}

// The seed's HTTP wrapper on the real engine: its exact request and response, the same seed
// giving the same image, negative prompt and cfg scale passed through.
func TestRealHTTPWrapper(t *testing.T) {
	for _, mode := range realModes {
		t.Run(modeName(mode), func(t *testing.T) {
			s := startRealService(t, nil)
			s.startReal(t, mode)
			url := s.httpURL + "/v1/images/generations"
			req := `{"prompt":"A serene mountain landscape at sunset","negativePrompt":"blurry, low quality","width":128,"height":64,"steps":3,"cfgScale":5,"seed":12345,"sampler":"euler_a"}`
			st, out := postJSON(t, url, req)
			if st != 200 {
				t.Fatalf("generate: %d %v", st, out)
			}
			if out["format"] != "png" || out["seed"] != float64(12345) || out["width"] != float64(128) || out["height"] != float64(64) || len(out) != 6 {
				t.Errorf("response %v", out)
			}
			raw, err := base64.StdEncoding.DecodeString(out["image"].(string))
			if err != nil {
				t.Fatal(err)
			}
			checkPNG(t, raw, 128, 64)
			_, again := postJSON(t, url, req)
			if again["image"] != out["image"] {
				t.Error("the same request and seed gave another image")
			}
			_, other := postJSON(t, url, strings.Replace(req, "12345", "12346", 1))
			if other["image"] == out["image"] {
				t.Error("another seed gave the same image")
			}
		})
	}
}

// Regression: the same seed in sd-cli and sd-server gives the same pixels (the PNG bytes differ:
// other metadata), so cross-mode comparisons must decode.
func TestRealModesGiveTheSamePixels(t *testing.T) {
	var pngs [][]byte
	for _, mode := range realModes {
		s := startRealService(t, nil)
		s.startReal(t, mode)
		g := generate(context.Background(), s.client, fox(64, 64, 2), nil)
		if g.err != nil {
			t.Fatal(g.err)
		}
		pngs = append(pngs, g.result.Png)
	}
	a, err := png.Decode(bytes.NewReader(pngs[0]))
	if err != nil {
		t.Fatal(err)
	}
	b, err := png.Decode(bytes.NewReader(pngs[1]))
	if err != nil {
		t.Fatal(err)
	}
	for y := 0; y < 64; y++ {
		for x := 0; x < 64; x++ {
			if a.At(x, y) != b.At(x, y) {
				t.Fatalf("pixel %d,%d differs between sd-cli and sd-server", x, y)
			}
		}
	}
}

func procAlive(pid int32) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(int(pid)) + "/stat")
	return err == nil && !strings.Contains(string(b), ") Z ")
}

// -default-model, -mode and -autostart: the engine runs when the service takes its first call,
// and a Start without a model uses the default.
func TestRealAutostartWithDefaultModel(t *testing.T) {
	s := startRealService(t, func(o *Options) { o.DefaultModel, o.DefaultMode, o.Autostart = realModelID, "server", true })
	ctx := context.Background()
	in, err := s.client.GetInfo(ctx, &diffusionv1.GetInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if in.Info.Status.String() != "SERVER_STATUS_RUNNING" || in.Info.ModelId != realModelID || in.Info.Config.GetMode() != diffusionv1.EngineMode_ENGINE_MODE_SERVER || in.Info.DemoEngine {
		t.Fatalf("after autostart: %v", in.Info)
	}
	if g := generate(ctx, s.client, fox(64, 64, 2), nil); g.err != nil {
		t.Fatal(g.err)
	}
	if _, err := s.client.Stop(ctx, &diffusionv1.StopRequest{}); err != nil {
		t.Fatal(err)
	}
	resp, err := s.client.Start(ctx, &diffusionv1.StartRequest{Config: &diffusionv1.DiffusionConfig{}})
	if err != nil || resp.Info.ModelId != realModelID {
		t.Fatalf("start without a model id: %v %v", resp, err)
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, o := range []Options{
		{DefaultMode: "turbo"},
		{Autostart: true},
		{DefaultModel: "../x"},
	} {
		if err := o.withDefaults().Validate(); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
	if err := (Options{DemoEngines: true, Autostart: true}).withDefaults().Validate(); err != nil {
		t.Errorf("demo autostart: %v", err)
	}
}

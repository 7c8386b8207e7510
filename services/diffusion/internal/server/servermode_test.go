package server

import (
	"context"
	"encoding/base64"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
)

func procAlive(pid int32) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(int(pid)) + "/stat")
	return err == nil && !strings.Contains(string(b), ") Z ")
}

// Server mode through gRPC and the HTTP wrapper: one persistent sd-server stand-in.
func TestServerModeGRPCAndHTTP(t *testing.T) {
	if bins.Server == "" {
		t.Skip("sd-server stand-in not built")
	}
	s := startService(t, func(o *Options) { o.Env = append(o.Env, "SDSTANDIN_STEP_MS=20") })
	ctx := context.Background()
	info := s.start(t, diffusionv1.EngineMode_ENGINE_MODE_SERVER)
	if info.Port == 0 || info.Pid == 0 || !info.DemoEngine || info.Config.GetPort() != info.Port || info.Health.String() != "HEALTH_STATUS_OK" {
		t.Fatalf("info %v", info)
	}
	pid := info.Pid

	g := generate(ctx, s.client, fox(128, 64, 5), nil)
	if g.err != nil {
		t.Fatal(g.err)
	}
	checkProgress(t, g.progress, 5)
	if g.progress[0].Stage != diffusionv1.Stage_STAGE_QUEUED {
		t.Errorf("first progress %v, want queued", g.progress[0])
	}
	checkPNG(t, g.result.Png, 128, 64)

	st, out := postJSON(t, s.httpURL+"/v1/images/generations", `{"prompt":"a fox","width":64,"height":64,"steps":2,"seed":7}`)
	if st != 200 || out["seed"] != float64(7) {
		t.Fatalf("HTTP: %d %v", st, out["error"])
	}
	raw, _ := base64.StdEncoding.DecodeString(out["image"].(string))
	checkPNG(t, raw, 64, 64)
	if g := generate(ctx, s.client, fox(64, 64, 101), nil); code(g.err) != codes.InvalidArgument {
		t.Errorf("101 steps in server mode: %v", g.err)
	}

	// Cancel while generating: the stream ends Canceled and the old sd-server is gone.
	running := make(chan struct{})
	var once sync.Once
	done := make(chan generation, 1)
	go func() {
		done <- generate(ctx, s.client, fox(64, 64, 100), func(p *diffusionv1.Progress) {
			if p.Step >= 2 {
				once.Do(func() { close(running) })
			}
		})
	}()
	waitOrFail(t, running, done)
	if c, err := s.client.CancelGeneration(ctx, &diffusionv1.CancelGenerationRequest{}); err != nil || !c.Cancelled {
		t.Fatalf("cancel %v %v", c, err)
	}
	if g := <-done; code(g.err) != codes.Canceled {
		t.Errorf("cancelled stream: %v", g.err)
	}
	if procAlive(pid) {
		t.Errorf("sd-server %d alive after cancel", pid)
	}
	// Generating again works (after the restart).
	if g := generate(ctx, s.client, fox(64, 64, 2), nil); g.err != nil {
		t.Fatalf("after cancel: %v", g.err)
	}
	in, _ := s.client.GetInfo(ctx, &diffusionv1.GetInfoRequest{})
	if _, err := s.client.Stop(ctx, &diffusionv1.StopRequest{}); err != nil {
		t.Fatal(err)
	}
	if procAlive(in.Info.Pid) {
		t.Errorf("sd-server %d alive after stop", in.Info.Pid)
	}
}

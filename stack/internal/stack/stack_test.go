package stack_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"image/png"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectpb "google.golang.org/grpc/reflection/grpc_reflection_v1"

	"github.com/genailab/genailab/pkg/testenv"
	"github.com/genailab/genailab/stack/internal/stack"
)

// buildServices compiles every service binary into a temporary directory.
func buildServices(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	buildInto(t, dir)
	return dir
}

func buildInto(t testing.TB, dir string) {
	t.Helper()
	cmd := exec.Command("go", append([]string{"build", "-o", dir + "/"}, stack.Packages...)...)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("build services: %v", err)
	}
}

func listServices(t *testing.T, ctx context.Context, cc *grpc.ClientConn) []string {
	t.Helper()
	stream, err := reflectpb.NewServerReflectionClient(cc).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.CloseSend()
	if err := stream.Send(&reflectpb.ServerReflectionRequest{MessageRequest: &reflectpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.Name)
	}
	sort.Strings(names)
	return names
}

// TestStackServesEveryAPI is the foundation's acceptance test: the whole stack starts on
// ephemeral ports as separate processes, every gRPC server lists its services through
// reflection and reports SERVING, the gateway answers the seed contract, and stopping
// the stack leaves no process behind.
func TestStackServesEveryAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts every service")
	}
	bin := buildServices(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	logs := &syncWriter{w: &bytes.Buffer{}}
	// The real stable-diffusion.cpp with the tiny model, chosen and imported as `genailab up`
	// does it.
	sd := testenv.RequireRealSD(t)
	data := t.TempDir()
	model, source, err := stack.EnsureDiffusionModel(ctx, data, "", sd.Model)
	if err != nil {
		t.Fatal(err)
	}
	choice := stack.ChooseDiffusion(stack.DiffusionFacts{SDCLI: sd.CLI, SDServer: sd.Server, Source: "test", Model: model, ModelSource: source})
	if choice.Demo || choice.Model != model {
		t.Fatalf("choice %+v", choice)
	}
	s, err := stack.Start(ctx, stack.Options{DataDir: data, BinDir: bin, Ephemeral: true, Diffusion: choice, LogOutput: logs})
	if err != nil {
		t.Fatalf("start stack: %v\n%s", err, logs.String())
	}
	stopped := false
	defer func() {
		if !stopped {
			s.Stop(context.Background())
		}
	}()

	want := map[string][]string{
		"llm":          {"genailab.llm.v1.LLMService", "genailab.models.v1.ModelService"},
		"diffusion":    {"genailab.diffusion.v1.DiffusionService", "genailab.models.v1.ModelService"},
		"monitor":      {"genailab.monitor.v1.MonitorService"},
		"orchestrator": {"genailab.orchestrator.v1.OrchestratorService"},
	}
	found := map[string]bool{}
	for name, services := range want {
		cc, err := grpc.NewClient(s.Addr(name), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		listed := listServices(t, ctx, cc)
		for _, svc := range append(services, "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection") {
			if !contains(listed, svc) {
				t.Errorf("%s (%s) does not list %s: %v", name, s.Addr(name), svc, listed)
			}
		}
		for _, svc := range services {
			found[svc] = true
			resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
			if err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
				t.Errorf("%s: health of %s = %v, %v", name, svc, resp, err)
			}
		}
		cc.Close()
	}
	if len(found) != 5 {
		t.Errorf("want all five APIs, found %v", found)
	}

	gw := "http://" + s.Addr("gateway")
	resp, err := http.Get(gw + "/health")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) == "" {
		t.Fatalf("GET /health: %d %s", resp.StatusCode, body)
	}
	var health map[string]any
	if err := json.Unmarshal(body, &health); err != nil || health["status"] != "ok" || health["busy"] != false {
		t.Fatalf("GET /health = %s, want {\"status\":\"ok\",\"busy\":false}", body)
	}

	// The seed contract end to end, through the gateway, the orchestrator and the
	// diffusion service's real stable-diffusion.cpp, started at boot with the imported model.
	req := `{"prompt":"a red fox","width":64,"height":128,"steps":2,"seed":42,"sampler":"euler_a"}`
	resp, err = http.Post(gw+"/v1/images/generations", "application/json", strings.NewReader(req))
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST /v1/images/generations: %d %s\n%s", resp.StatusCode, body, logs.String())
	}
	var out struct {
		Image     string  `json:"image"`
		Format    string  `json:"format"`
		TimeTaken float64 `json:"timeTaken"`
		Seed      float64 `json:"seed"`
		Width     float64 `json:"width"`
		Height    float64 `json:"height"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("response %s: %v", body, err)
	}
	raw, err := base64.StdEncoding.DecodeString(out.Image)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("image is not a PNG: %v", err)
	}
	if out.Format != "png" || out.Seed != 42 || out.Width != 64 || out.Height != 128 ||
		img.Bounds().Dx() != 64 || img.Bounds().Dy() != 128 || out.TimeTaken <= 0 {
		t.Fatalf("unexpected result: format %s seed %v size %vx%v png %v time %v", out.Format, out.Seed, out.Width, out.Height, img.Bounds(), out.TimeTaken)
	}
	resp, err = http.Post(gw+"/v1/images/generations", "application/json", strings.NewReader(`{"width":64}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(body), `"error"`) {
		t.Fatalf("missing prompt: %d %s", resp.StatusCode, body)
	}

	pids := s.Pids()
	s.Stop(context.Background())
	stopped = true
	for _, pid := range pids {
		if syscall.Kill(pid, 0) == nil {
			if st, err := os.ReadFile(filepath.Join("/proc", itoa(pid), "stat")); err == nil && !strings.Contains(string(st), ") Z ") {
				t.Errorf("process %d still alive after Stop", pid)
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

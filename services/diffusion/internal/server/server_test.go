package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	commonv1 "github.com/genailab/genailab/gen/common/v1"
	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	modelsv1 "github.com/genailab/genailab/gen/models/v1"
	"github.com/genailab/genailab/pkg/grpcserver"
	"github.com/genailab/genailab/services/diffusion/internal/standinbin"
)

var bins standinbin.Paths

func TestMain(m *testing.M) {
	if fakeSDCLI() {
		return
	}
	relaySDCLI() // exits when this process is the benchmarks' relay
	var err error
	bins, err = standinbin.Build()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(bins.Dir)
	os.Exit(code)
}

// service is a running diffusion service (Run) with a gRPC client and the HTTP wrapper's URL.
type service struct {
	client  diffusionv1.DiffusionServiceClient
	models  modelsv1.ModelServiceClient
	logs    commonv1.LogServiceClient
	httpURL string
	tmp     string
}

func startService(t testing.TB, mutate func(*Options)) *service {
	t.Helper()
	dir := t.TempDir()
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	o := Options{
		GRPC:         grpcserver.Flags{Addr: "127.0.0.1:0", AddrFile: filepath.Join(dir, "grpc.addr")},
		HTTPAddr:     "127.0.0.1:0",
		HTTPAddrFile: filepath.Join(dir, "http.addr"),
		DataDir:      filepath.Join(dir, "data"),
		DemoEngines:  true,
		DemoDir:      bins.Dir,
		TempDir:      tmp,
		StallTimeout: 10 * time.Second,
		Env:          []string{"SDSTANDIN_BACKTRACE=none"},
	}
	if mutate != nil {
		mutate(&o)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- Run(ctx, o) }()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	grpcAddr := waitFile(t, o.GRPC.AddrFile, errc)
	s := &service{tmp: tmp}
	if o.HTTPAddr != HTTPOff {
		s.httpURL = "http://" + waitFile(t, o.HTTPAddrFile, errc)
	}
	cc, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	s.client = diffusionv1.NewDiffusionServiceClient(cc)
	s.logs = commonv1.NewLogServiceClient(cc)
	s.models = modelsv1.NewModelServiceClient(cc)
	return s
}

func waitFile(t testing.TB, path string, errc chan error) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
			return string(b)
		}
		select {
		case err := <-errc:
			t.Fatalf("service ended: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	t.Fatalf("%s never appeared", path)
	return ""
}

func (s *service) start(t *testing.T, mode diffusionv1.EngineMode) *diffusionv1.DiffusionInfo {
	t.Helper()
	resp, err := s.client.Start(context.Background(), &diffusionv1.StartRequest{Config: &diffusionv1.DiffusionConfig{Mode: mode, ModelId: DemoModelID}})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetInfo()
}

type generation struct {
	progress []*diffusionv1.Progress
	result   *diffusionv1.ImageResult
	err      error
}

func generate(ctx context.Context, c diffusionv1.DiffusionServiceClient, p *diffusionv1.ImageParams, onProgress func(*diffusionv1.Progress)) generation {
	var g generation
	stream, err := c.GenerateImage(ctx, &diffusionv1.GenerateImageRequest{Params: p})
	if err != nil {
		g.err = err
		return g
	}
	for {
		resp, err := stream.Recv()
		if err == io.EOF {
			return g
		}
		if err != nil {
			g.err = err
			return g
		}
		switch ev := resp.Event.(type) {
		case *diffusionv1.GenerateImageResponse_Progress:
			g.progress = append(g.progress, ev.Progress)
			if onProgress != nil {
				onProgress(ev.Progress)
			}
		case *diffusionv1.GenerateImageResponse_Result:
			g.result = ev.Result
		}
	}
}

func ptr[T any](v T) *T { return &v }

func fox(w, h, steps int32) *diffusionv1.ImageParams {
	return &diffusionv1.ImageParams{Prompt: "a red fox", Width: proto.Int32(w), Height: proto.Int32(h), Steps: proto.Int32(steps), Seed: ptr(int64(42))}
}

func checkProgress(t *testing.T, ps []*diffusionv1.Progress, steps int32) {
	t.Helper()
	if len(ps) == 0 {
		t.Fatal("no progress")
	}
	var seen []int32
	for i, p := range ps {
		if i > 0 {
			a := ps[i-1]
			if stageOrder(p.Stage) < stageOrder(a.Stage) || p.Step < a.Step || p.Percent < a.Percent || p.ElapsedMs < a.ElapsedMs {
				t.Fatalf("progress went back at %d: %v -> %v", i, a, p)
			}
		}
		if p.Stage == diffusionv1.Stage_STAGE_SAMPLING && p.Step > 0 && (len(seen) == 0 || seen[len(seen)-1] != p.Step) {
			seen = append(seen, p.Step)
		}
	}
	last := ps[len(ps)-1]
	if last.Stage != diffusionv1.Stage_STAGE_DONE || last.Percent != 100 || last.Step != steps || last.TotalSteps != steps {
		t.Errorf("last progress %v", last)
	}
	if len(seen) < int(steps)/2 {
		t.Errorf("saw sampling steps %v of %d", seen, steps)
	}
}

// stageOrder is a stage's place in a generation (STAGE_ENCODING was numbered last).
func stageOrder(s diffusionv1.Stage) int {
	for i, x := range []diffusionv1.Stage{diffusionv1.Stage_STAGE_QUEUED, diffusionv1.Stage_STAGE_LOADING, diffusionv1.Stage_STAGE_ENCODING,
		diffusionv1.Stage_STAGE_SAMPLING, diffusionv1.Stage_STAGE_DECODING, diffusionv1.Stage_STAGE_DONE} {
		if s == x {
			return i
		}
	}
	return -1
}

func checkPNG(t *testing.T, b []byte, w, h int) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("result is not a PNG: %v", err)
	}
	if img.Bounds().Dx() != w || img.Bounds().Dy() != h {
		t.Fatalf("PNG is %v, want %dx%d", img.Bounds(), w, h)
	}
}

func code(err error) codes.Code { return status.Code(err) }

// The seed's manual checklist, through gRPC, in CLI mode on the real engine: what
// TestRealGRPCChecklist does not cover (bad input, unknown and bad model ids, a second start, a
// random seed, stop during a generation).
func TestGRPCChecklistCLI(t *testing.T) {
	s := startRealService(t, nil)
	ctx := context.Background()

	// Start without model.
	if _, err := s.client.Start(ctx, &diffusionv1.StartRequest{Config: &diffusionv1.DiffusionConfig{}}); code(err) != codes.InvalidArgument {
		t.Errorf("start without model: %v", err)
	}
	if _, err := s.client.Start(ctx, &diffusionv1.StartRequest{Config: &diffusionv1.DiffusionConfig{ModelId: "no-such-model"}}); code(err) != codes.NotFound {
		t.Errorf("start with an unknown model: %v", err)
	}
	if _, err := s.client.Start(ctx, &diffusionv1.StartRequest{Config: &diffusionv1.DiffusionConfig{ModelId: "../etc"}}); code(err) != codes.InvalidArgument {
		t.Errorf("start with a bad model id: %v", err)
	}
	resp, err := s.client.Start(ctx, &diffusionv1.StartRequest{Config: &diffusionv1.DiffusionConfig{ModelId: realModelID}})
	if err != nil {
		t.Fatal(err)
	}
	info := resp.GetInfo()
	if info.DemoEngine || info.Config.GetMode() != diffusionv1.EngineMode_ENGINE_MODE_CLI || info.ModelId != realModelID || info.Status.String() != "SERVER_STATUS_RUNNING" {
		t.Errorf("info after start: %v", info)
	}
	if _, err := s.client.Start(ctx, &diffusionv1.StartRequest{Config: &diffusionv1.DiffusionConfig{ModelId: realModelID}}); code(err) != codes.FailedPrecondition {
		t.Errorf("second start: %v", err)
	}

	// Generate without prompt, and other bad input.
	for _, p := range []*diffusionv1.ImageParams{
		{Width: proto.Int32(64), Height: proto.Int32(64)},
		{Prompt: "x", Width: proto.Int32(100)},
		{Prompt: "x", Steps: proto.Int32(151)},
		{Prompt: "x", Steps: proto.Int32(0)}, // issue 13: an explicit 0 is not the default
		{Prompt: "x", Width: proto.Int32(0)},
		{Prompt: "x", Height: proto.Int32(0)},
		{Prompt: "x", CfgScale: ptr(float32(31))},
		{Prompt: "x", Sampler: "ddim"},
		{Prompt: strings.Repeat("x", 4001)},
	} {
		if g := generate(ctx, s.client, p, nil); code(g.err) != codes.InvalidArgument {
			t.Errorf("params %v: %v", p, g.err)
		}
	}
	// The defaults are resolved and returned.
	g := generate(ctx, s.client, fox(64, 64, 2), nil)
	if g.err != nil {
		t.Fatal(g.err)
	}
	if g.result.Seed != 42 || g.result.DemoEngine || g.result.Params.GetSampler() != "euler_a" || g.result.Params.GetCfgScale() != 7.5 {
		t.Errorf("result %v", g.result.Params)
	}
	// A random seed is drawn and returned.
	g = generate(ctx, s.client, &diffusionv1.ImageParams{Prompt: "x", Width: proto.Int32(64), Height: proto.Int32(64), Steps: proto.Int32(1), Seed: ptr(int64(-1))}, nil)
	if g.err != nil || g.result.Seed < 0 || g.result.Params.GetSeed() != g.result.Seed {
		t.Errorf("random seed: %v %v", g.err, g.result)
	}

	// Stop during generation.
	done := generateUntilSampling(t, ctx, s.client)
	in, _ := s.client.GetInfo(ctx, &diffusionv1.GetInfoRequest{})
	stop, err := s.client.Stop(ctx, &diffusionv1.StopRequest{})
	if err != nil || stop.Info.Status.String() != "SERVER_STATUS_STOPPED" || stop.Info.Busy {
		t.Fatalf("stop: %v %v", stop, err)
	}
	if g := <-done; code(g.err) != codes.Canceled {
		t.Errorf("stream during stop: %v", g.err)
	}
	assertNoProcess(t, int(in.Info.Pid), s.tmp)
	if g := generate(ctx, s.client, fox(64, 64, 2), nil); code(g.err) != codes.FailedPrecondition {
		t.Errorf("generate after stop: %v", g.err)
	}
}

// generateUntilSampling starts a long generation (128x128, 60 steps) and returns once its
// first sampling step has reached the client, with the channel that receives how it ended.
func generateUntilSampling(t *testing.T, ctx context.Context, client diffusionv1.DiffusionServiceClient) <-chan generation {
	t.Helper()
	running := make(chan struct{})
	var once sync.Once
	done := make(chan generation, 1)
	go func() {
		done <- generate(ctx, client, fox(128, 128, 60), func(p *diffusionv1.Progress) {
			if p.Step >= 1 {
				once.Do(func() { close(running) })
			}
		})
	}()
	select {
	case <-running:
	case g := <-done:
		t.Fatalf("generation ended early: %v", g.err)
	case <-time.After(30 * time.Second):
		t.Fatal("no progress")
	}
	return done
}

// assertNoProcess checks that pid is gone (/proc) and that no temporary file is left.
func assertNoProcess(t *testing.T, pid int, tmp string) {
	t.Helper()
	if pid == 0 {
		t.Error("no pid to check")
	} else if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
		t.Errorf("process %d still exists", pid)
	}
	ents, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "sd-cli-") {
			t.Errorf("temporary files left: %s", e.Name())
		}
	}
}

func TestGRPCLogsWatchAndModels(t *testing.T) {
	s := startRealService(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	watch, err := s.client.WatchInfo(ctx, &diffusionv1.WatchInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	first, err := watch.Recv()
	if err != nil || first.Type != diffusionv1.DiffusionEventType_DIFFUSION_EVENT_TYPE_SNAPSHOT {
		t.Fatalf("first watch message %v %v", first, err)
	}
	s.startReal(t, diffusionv1.EngineMode_ENGINE_MODE_CLI)
	if g := generate(ctx, s.client, fox(64, 64, 2), nil); g.err != nil {
		t.Fatal(g.err)
	}
	var types []string
	for len(types) < 3 {
		ev, err := watch.Recv()
		if err != nil {
			t.Fatal(err)
		}
		types = append(types, strings.TrimPrefix(ev.Type.String(), "DIFFUSION_EVENT_TYPE_"))
	}
	if got := strings.Join(types, ","); got != "STARTED,GENERATION_STARTED,GENERATION_FINISHED" {
		t.Errorf("events %s", got)
	}
	logs, err := s.client.StreamLogs(ctx, &diffusionv1.StreamLogsRequest{TailLines: proto.Int32(1000)})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for {
		l, err := logs.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, l.Line.Message)
	}
	joined := strings.Join(lines, "\n")
	for _, want := range []string{"Version: SDXS", "generating image: 1/1 - seed 42", "save result image 0"} {
		if !strings.Contains(joined, want) {
			t.Errorf("logs miss %q (%d lines)", want, len(lines))
		}
	}
	// Issue 13: the same lines through the shared genailab.common.v1.LogService, whose
	// default tail (no tail_lines) holds this short log whole.
	shared, err := s.logs.StreamLogs(ctx, &commonv1.StreamLogsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var sharedLines []string
	for {
		l, err := shared.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		sharedLines = append(sharedLines, l.GetLine().GetMessage())
	}
	if want := lines[max(0, len(lines)-200):]; strings.Join(sharedLines, "\n") != strings.Join(want, "\n") {
		t.Errorf("LogService sent %d lines, want the last %d of StreamLogs' %d", len(sharedLines), len(want), len(lines))
	}
	// ModelService for type diffusion is registered.
	list, err := s.models.ListModels(ctx, &modelsv1.ListModelsRequest{Type: modelsv1.ModelType_MODEL_TYPE_DIFFUSION})
	if err != nil || len(list.Models) != 1 || list.Models[0].GetId() != realModelID {
		t.Errorf("ListModels: %v %v", list, err)
	}
}

func postJSON(t *testing.T, url, body string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("response %q is not JSON: %v", b, err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("content type %q", ct)
	}
	return resp.StatusCode, out
}

func getHealth(t *testing.T, s *service) map[string]any {
	t.Helper()
	resp, err := http.Get(s.httpURL + "/health")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
		t.Fatalf("health: %d %v", resp.StatusCode, err)
	}
	return out
}

// The seed's HTTP wrapper, with its exact request, response and error JSON.
// On the real engine (CLI mode).
func TestHTTPWrapperCLI(t *testing.T) {
	s := startRealService(t, nil)
	url := s.httpURL + "/v1/images/generations"
	if h := getHealth(t, s); h["status"] != "ok" || h["busy"] != false || len(h) != 2 {
		t.Errorf("health %v", h)
	}
	if st, out := postJSON(t, url, `{"prompt":"a fox","width":64,"height":64,"steps":2}`); st != 503 || !strings.Contains(out["error"].(string), "not running") {
		t.Errorf("generate while stopped: %d %v", st, out)
	}
	s.startReal(t, diffusionv1.EngineMode_ENGINE_MODE_CLI)
	for _, body := range []string{`{"width":64}`, `{"prompt":"x","width":65}`, `not json`, ``, `{"prompt":"x","steps":"many"}`} {
		if st, out := postJSON(t, url, body); st != 400 || out["error"] == "" || len(out) != 1 {
			t.Errorf("%q: %d %v", body, st, out)
		}
	}
	req := `{"prompt":"A serene mountain landscape at sunset","negativePrompt":"blurry, low quality","width":128,"height":64,"steps":3,"cfgScale":7.5,"seed":12345,"sampler":"euler_a"}`
	st, out := postJSON(t, url, req)
	if st != 200 {
		t.Fatalf("generate: %d %v", st, out)
	}
	if out["format"] != "png" || out["seed"] != float64(12345) || out["width"] != float64(128) || out["height"] != float64(64) {
		t.Errorf("response %v", out)
	}
	if tt, ok := out["timeTaken"].(float64); !ok || tt <= 0 {
		t.Errorf("timeTaken %v", out["timeTaken"])
	}
	raw, err := base64.StdEncoding.DecodeString(out["image"].(string))
	if err != nil {
		t.Fatal(err)
	}
	checkPNG(t, raw, 128, 64)
	if len(out) != 6 {
		t.Errorf("response keys %v", out)
	}
	// seed -1 (what the seed's UI sends by default) draws one.
	if st, out := postJSON(t, url, `{"prompt":"x","width":64,"height":64,"steps":1,"seed":-1}`); st != 200 || out["seed"].(float64) < 0 {
		t.Errorf("seed -1: %d %v", st, out["seed"])
	}

	// Busy: 503 with the seed's message, and /health says busy.
	done := make(chan int, 1)
	go func() {
		st, _ := postJSON(t, url, `{"prompt":"x","width":128,"height":128,"steps":80}`)
		done <- st
	}()
	deadline := time.Now().Add(60 * time.Second)
	for getHealth(t, s)["busy"] != true {
		if time.Now().After(deadline) {
			t.Fatal("never busy")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st, out := postJSON(t, url, `{"prompt":"x","width":64,"height":64,"steps":2}`); st != 503 || out["error"] != "Server is busy generating another image" {
		t.Errorf("busy: %d %v", st, out)
	}
	if _, err := s.client.CancelGeneration(context.Background(), &diffusionv1.CancelGenerationRequest{}); err != nil {
		t.Fatal(err)
	}
	if st := <-done; st != 500 {
		t.Errorf("cancelled HTTP generation: %d", st)
	}
}

func TestHTTPWrapperToken(t *testing.T) {
	s := startService(t, func(o *Options) { o.GRPC.Token = "s3cret" })
	if h := getHealth(t, s); h["status"] != "ok" {
		t.Errorf("health is open: %v", h)
	}
	if st, _ := postJSON(t, s.httpURL+"/v1/images/generations", `{"prompt":"x"}`); st != 401 {
		t.Errorf("without token: %d", st)
	}
}

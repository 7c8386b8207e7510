package e2e

// Placement by engine capability (issue 18) on the real stable-diffusion.cpp: two hosts, one
// whose diffusion service runs sd-server (no previews in this version) and one sd-cli. A
// preview request goes to the CLI host, never the server host; with only the server host
// it is refused at submit — FailedPrecondition, UNSUPPORTED_IN_MODE, over gRPC and through
// the gateway — with no job and no event.
//
// The two hosts share one LLM service (its LLM not started: nothing to offload) and one
// monitor; each has its own diffusion service and data directory. Placement by capability
// reads only the diffusion engine's GetInfo, so the shared services change nothing here.

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/pkg/grpcerr"
	"github.com/genailab/genailab/pkg/testenv"
)

// capLab is the services of the two hosts: LLM and monitor shared, diffusion per host.
type capLab struct {
	t         *testing.T
	dir       string
	llm, mon  string
	diffusion map[string]string // host → diffusion gRPC address
	procs     []*proc
}

// startCapLab starts the shared LLM service and monitor, and a diffusion service per host
// on the real engine with the tiny model, started in the given mode.
func startCapLab(t *testing.T, modes map[string]diffusionv1.EngineMode) *capLab {
	t.Helper()
	testenv.Need(t, testenv.RequireSDCPPEnv, realSDErr)
	l := &capLab{t: t, dir: t.TempDir(), diffusion: map[string]string{}}
	t.Cleanup(func() {
		for i := len(l.procs) - 1; i >= 0; i-- {
			l.procs[i].stop()
		}
		if t.Failed() {
			for _, p := range l.procs {
				t.Logf("---- %s log ----\n%s", p.name, tail(p.logs(), 4000))
			}
		}
	})
	run := filepath.Join(l.dir, "run")
	if err := os.MkdirAll(run, 0o700); err != nil {
		t.Fatal(err)
	}
	af := func(n string) string { return filepath.Join(run, n+".addr") }
	start := func(name, bin string, args ...string) string {
		p, a := startProc(t, bin, nil, []string{af(name)}, append([]string{"-grpc-addr", "127.0.0.1:0", "-addr-file", af(name)}, args...)...)
		p.name = name
		l.procs = append(l.procs, p)
		return a[0]
	}
	shared := filepath.Join(l.dir, "shared")
	l.mon = start("monitor", "genailab-monitor", "-metrics-addr", "off", "-data-dir", shared)
	llmArgs := []string{"-data-dir", shared}
	if llamaServer != "" {
		llmArgs = append(llmArgs, "-llama-server", llamaServer)
	}
	l.llm = start("llm", "genailab-llm", llmArgs...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for host, mode := range modes {
		data := filepath.Join(l.dir, host)
		importTinySD(t, data)
		addr := start("diffusion-"+host, "genailab-diffusion", "-http-addr", "off", "-data-dir", data, "-temp-dir", l.dir,
			"-sd-cli", realSD.CLI, "-sd-server", realSD.Server)
		c := diffusionv1.NewDiffusionServiceClient(dial(t, addr))
		if _, err := c.Start(ctx, &diffusionv1.StartRequest{Config: diffusionConfig(false, mode)}); err != nil {
			t.Fatalf("start diffusion on %s: %v", host, err)
		}
		l.diffusion[host] = addr
	}
	return l
}

// capOrch is an orchestrator (and gateway) over some of the lab's hosts.
type capOrch struct {
	orch    orchestratorv1.OrchestratorServiceClient
	events  *eventLog
	gateway string
}

// orchestrate starts an orchestrator over hosts (and a gateway in front of it) and waits
// until every host is ready: checked, so its engine's capabilities are known.
func (l *capLab) orchestrate(name string, hosts ...string) *capOrch {
	t := l.t
	t.Helper()
	var specs []string
	for _, h := range hosts {
		specs = append(specs, fmt.Sprintf("%s=%s,%s,%s", h, l.llm, l.diffusion[h], l.mon))
	}
	run := filepath.Join(l.dir, "run")
	af := filepath.Join(run, name+".addr")
	p, a := startProc(t, "genailab-orchestrator", nil, []string{af}, "-grpc-addr", "127.0.0.1:0", "-addr-file", af,
		"-data-dir", filepath.Join(l.dir, name), "-hosts", strings.Join(specs, ";"), "-host-check-interval", "200ms")
	p.name = name
	l.procs = append(l.procs, p)
	o := &capOrch{orch: orchestratorv1.NewOrchestratorServiceClient(dial(t, a[0]))}
	o.events = watchEvents(t, o.orch)
	gaf := filepath.Join(run, name+"-gateway.addr")
	g, ga := startProc(t, "genailab-gateway", nil, []string{gaf}, "-http-addr", "127.0.0.1:0", "-addr-file", gaf,
		"-llm-addr", l.llm, "-diffusion-addr", l.diffusion[hosts[0]], "-monitor-addr", l.mon, "-orchestrator-addr", a[0])
	g.name = name + "-gateway"
	l.procs = append(l.procs, g)
	o.gateway = "http://" + ga[0]
	// ListHosts has no watch: poll it (the existing multi-host helpers).
	waitFor(t, "hosts ready", 30*time.Second, func() bool {
		hs := hostsByName(t, o.orch)
		for _, h := range hosts {
			if hs[h].GetState() != orchestratorv1.HostState_HOST_STATE_READY {
				return false
			}
		}
		return true
	})
	return o
}

func previewParams() *diffusionv1.ImageParams {
	return &diffusionv1.ImageParams{Prompt: "a red fox", Width: proto.Int32(64), Height: proto.Int32(64), Steps: proto.Int32(2), Seed: proto.Int64(3),
		Preview: &diffusionv1.PreviewOptions{Method: diffusionv1.PreviewMethod_PREVIEW_METHOD_PROJ, Interval: proto.Int32(1)}}
}

// generateOn runs p through o's GenerateImage stream.
func generateOn(o *capOrch, p *diffusionv1.ImageParams, pin string) featureRun {
	return generateRequest(o.orch, &orchestratorv1.GenerateImageRequest{Params: p, Host: pin})
}

func jobHost(t *testing.T, o *capOrch, id string) string {
	t.Helper()
	j, err := o.orch.GetJob(context.Background(), &orchestratorv1.GetJobRequest{Id: id})
	if err != nil {
		t.Fatal(err)
	}
	return j.GetJob().GetHost()
}

// refusedInMode checks a refusal: FailedPrecondition, UNSUPPORTED_IN_MODE, naming the mode
// and what it lacks.
func refusedInMode(t *testing.T, what string, err error) {
	t.Helper()
	if status.Code(err) != codes.FailedPrecondition || grpcerr.Reason(err) != "UNSUPPORTED_IN_MODE" ||
		!strings.Contains(err.Error(), "proj previews are not available in server mode") {
		t.Errorf("%s: %v (reason %q)", what, err, grpcerr.Reason(err))
	}
}

func TestPlacementFollowsEngineCapabilities(t *testing.T) {
	start := time.Now()
	lab := startCapLab(t, map[string]diffusionv1.EngineMode{"srv": diffusionv1.EngineMode_ENGINE_MODE_SERVER, "cli": diffusionv1.EngineMode_ENGINE_MODE_CLI})
	t.Logf("lab up in %v", time.Since(start).Round(time.Millisecond))

	// Both hosts. Text to image goes to srv (its sd-server has the model loaded), a preview
	// request to cli, with srv named as excluded.
	both := lab.orchestrate("orch-both", "srv", "cli")
	plain := previewParams()
	plain.Preview = nil
	if r := generateOn(both, plain, ""); r.err != nil || r.result == nil || jobHost(t, both, r.jobID) != "srv" {
		t.Fatalf("text to image: %v, on %q", r.err, jobHost(t, both, r.jobID))
	}
	for i := range 2 {
		t0 := time.Now()
		r := generateOn(both, previewParams(), "")
		if r.err != nil || r.result == nil || len(r.previews) == 0 {
			t.Fatalf("preview request %d: %v (%d previews)", i, r.err, len(r.previews))
		}
		if h := jobHost(t, both, r.jobID); h != "cli" {
			t.Fatalf("preview request %d ran on %q, want cli", i, h)
		}
		placed := both.events.wait(t, orchestratorv1.EventType_EVENT_TYPE_JOB_PLACED, r.jobID, 10*time.Second)
		if !strings.Contains(placed.GetMessage(), "Excluded 1 host(s) whose engine cannot run it: srv: proj previews are not available in server mode") {
			t.Errorf("placement sentence: %q", placed.GetMessage())
		}
		t.Logf("preview request %d on cli: %d previews, %v; placed: %s", i, len(r.previews), time.Since(t0).Round(time.Millisecond), placed.GetMessage())
	}
	// Pinned to the server host: refused at submit.
	r := generateOn(both, previewParams(), "srv")
	refusedInMode(t, "pinned to srv", r.err)
	if r.jobID != "" {
		t.Errorf("a job %s was made for a refused request", r.jobID)
	}

	// Only the server host: refused at submit, before any job or event.
	only := lab.orchestrate("orch-srv", "srv")
	ctx := context.Background()
	r = generateOn(only, previewParams(), "")
	refusedInMode(t, "GenerateImage", r.err)
	if r.jobID != "" {
		t.Errorf("GenerateImage made job %s", r.jobID)
	}
	_, err := only.orch.SubmitJob(ctx, &orchestratorv1.SubmitJobRequest{Params: previewParams()})
	refusedInMode(t, "SubmitJob", err)
	// Through the gateway: 400 with the reason in the body (pkg/httperr: FailedPrecondition
	// is 503 there, but UNSUPPORTED_IN_MODE is 400: a retry cannot help), as issue 18 asks.
	body := `{"params":{"prompt":"a red fox","width":64,"height":64,"steps":2,"preview":{"method":"PREVIEW_METHOD_PROJ"}}}`
	for _, path := range []string{"/v1/images/jobs", "/v1/images/generate"} {
		code, _, out := httpJSON(t, http.MethodPost, only.gateway+path, body)
		if code != http.StatusBadRequest || out["reason"] != "UNSUPPORTED_IN_MODE" || !strings.Contains(fmt.Sprint(out["error"]), "proj previews are not available in server mode") {
			t.Errorf("POST %s: %d %v", path, code, out)
		}
	}
	code, _, out := httpJSON(t, http.MethodPost, only.gateway+"/openai/v1/images/generations",
		`{"prompt":"a red fox","size":"256x256","stream":true,"partial_images":2}`)
	if oe, _ := out["error"].(map[string]any); code != http.StatusBadRequest || oe["code"] != "unsupported_in_mode" || !strings.Contains(fmt.Sprint(oe["message"]), "server mode") {
		t.Errorf("OpenAI streaming with partial images: %d %v", code, out)
	}
	// A plain job after the refusals: its JOB_QUEUED is the first job event of this
	// orchestrator, and the only job.
	j, err := only.orch.SubmitJob(ctx, &orchestratorv1.SubmitJobRequest{Params: plain})
	if err != nil {
		t.Fatal(err)
	}
	only.events.wait(t, orchestratorv1.EventType_EVENT_TYPE_JOB_QUEUED, j.GetJob().GetId(), 10*time.Second)
	for _, e := range only.events.all("") {
		if e.GetJobId() != "" && e.GetJobId() != j.GetJob().GetId() {
			t.Errorf("event of another job: %v", e)
		}
		if e.GetJobId() == j.GetJob().GetId() {
			break
		}
	}
	list, err := only.orch.ListJobs(ctx, &orchestratorv1.ListJobsRequest{})
	if err != nil || len(list.GetJobs()) != 1 {
		t.Errorf("jobs after the refusals: %v %v", list.GetJobs(), err)
	}
	only.events.wait(t, orchestratorv1.EventType_EVENT_TYPE_JOB_FINISHED, j.GetJob().GetId(), 60*time.Second)
	t.Logf("whole test %v", time.Since(start).Round(time.Millisecond))
}

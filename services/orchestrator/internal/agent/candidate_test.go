package agent

import (
	"strings"
	"testing"

	commonv1 "github.com/genailab/genailab/gen/common/v1"
	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	monitorv1 "github.com/genailab/genailab/gen/monitor/v1"
	"github.com/genailab/genailab/services/orchestrator/internal/place"
)

// withTelemetry is a host whose last health check reached it, with the diffusion engine
// running model "demo" in the given mode.
func withTelemetry(name string, mode diffusionv1.EngineMode) *Agent {
	a := &Agent{Spec: Spec{Name: name}, checked: true, reachable: true}
	a.tel = telemetry{
		usage:     &monitorv1.Usage{Memory: &monitorv1.MemoryInfo{AvailableBytes: 64 << 30}},
		diffusion: &diffusionv1.DiffusionInfo{Status: commonv1.ServerStatus_SERVER_STATUS_RUNNING, ModelId: "demo", Config: &diffusionv1.DiffusionConfig{ModelId: "demo", Mode: mode}},
		models:    map[string]uint64{"demo": 1 << 20},
	}
	return a
}

// TestCLIModeDecisionDoesNotSayTheModelIsLoaded: in sd-cli mode no process holds a model
// between images, so placement neither prefers such a host for a "loaded" model nor says
// that its engine "already has the model loaded"; a running sd-server with the model does.
func TestCLIModeDecisionDoesNotSayTheModelIsLoaded(t *testing.T) {
	o := PlaceOptions{DiffusionModel: "demo"}
	req := ImageRequest{Width: 512, Height: 512}
	cli := withTelemetry("cli-host", diffusionv1.EngineMode_ENGINE_MODE_CLI).Candidate(o, req, 0, 0)
	if cli.ModelLoaded || !cli.LoadsPerImage || !cli.Usable || !cli.HasModel {
		t.Fatalf("CLI-mode candidate: %+v", cli)
	}
	ch, err := place.Choose([]place.Candidate{cli}, place.Request{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(ch.Explanation, "already has the model loaded") || !strings.Contains(ch.Explanation, "sd-cli, which loads the model for this image") {
		t.Errorf("CLI-mode explanation: %q", ch.Explanation)
	}

	srv := withTelemetry("server-host", diffusionv1.EngineMode_ENGINE_MODE_SERVER).Candidate(o, req, 0, 0)
	if !srv.ModelLoaded || srv.LoadsPerImage {
		t.Fatalf("server-mode candidate: %+v", srv)
	}
	ch, err = place.Choose([]place.Candidate{srv}, place.Request{})
	if err != nil || !strings.Contains(ch.Explanation, "(sd-server) already has the model loaded") {
		t.Errorf("server-mode explanation: %q (%v)", ch.Explanation, err)
	}
	// With both able to take it, the loaded sd-server is preferred; a CLI host no longer
	// ranks as "loaded" against it.
	ch, _ = place.Choose([]place.Candidate{cli, srv}, place.Request{})
	if ch.Name != "server-host" {
		t.Errorf("chose %s, want the sd-server host with the model loaded", ch.Name)
	}
}

// TestRunningImagesMakeTheHostBusy: the registry's count of running images is what makes
// a candidate busy, and counts with the images queued for it.
func TestRunningImagesMakeTheHostBusy(t *testing.T) {
	a := withTelemetry("h", diffusionv1.EngineMode_ENGINE_MODE_CLI)
	c := a.Candidate(PlaceOptions{}, ImageRequest{Width: 64, Height: 64}, 1, 2)
	if c.Usable || !c.Busy || c.Queued != 3 {
		t.Fatalf("busy candidate: %+v", c)
	}
	a.SetDraining(true)
	if c := a.Candidate(PlaceOptions{}, ImageRequest{Width: 64, Height: 64}, 0, 0); c.Usable || c.Busy || c.Why != "drained by an operator" {
		t.Fatalf("draining candidate: %+v", c)
	}
}

package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
)

// TestSingleHostIsLocalAndJobsRecordTheResolvedDefaults (issue 15, edges 3 and 4, and the
// messages found wrong): on a single-host stack (no -host-name) the host is "local" in the
// job, in every event and in the placement message, as in ListHosts (it was "" there:
// "Placed on  (best of 1 host(s)…"); a request that leaves size, steps and seed out is
// recorded and announced with what it runs with (512x512, 20 steps, the drawn seed: it was
// "Job queued (0x0, 0 steps)."); the sd-cli engine is not said to have "the model loaded";
// and CancelJob of a running job answers CANCELLED, not RUNNING.
func TestSingleHostIsLocalAndJobsRecordTheResolvedDefaults(t *testing.T) {
	s := newStack(t, stackOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	hl, err := s.orch.ListHosts(ctx, &orchestratorv1.ListHostsRequest{})
	if err != nil || len(hl.GetHosts()) != 1 || hl.GetHosts()[0].GetName() != "local" {
		t.Fatalf("ListHosts: %v %v", hl, err)
	}
	sub, err := s.orch.SubmitJob(ctx, &orchestratorv1.SubmitJobRequest{Params: &diffusionv1.ImageParams{Prompt: "a lighthouse at dusk"}})
	if err != nil {
		t.Fatal(err)
	}
	j := sub.GetJob()
	p := j.GetParams()
	if j.GetHost() != "local" || p.GetWidth() != 512 || p.GetHeight() != 512 || p.GetSteps() != 20 || p.Seed == nil || p.GetSeed() < 0 ||
		p.GetSampler() != "euler_a" || p.GetCfgScale() != 7.5 {
		t.Fatalf("the job records %v (host %q), want the resolved defaults on host local", p, j.GetHost())
	}
	id := j.GetId()
	if got, err := s.orch.GetJob(ctx, &orchestratorv1.GetJobRequest{Id: id}); err != nil || got.GetJob().GetParams().GetSeed() != p.GetSeed() {
		t.Fatalf("GetJob: %v %v, want seed %d", got, err, p.GetSeed())
	}
	queued := s.events.wait(t, evQueued, id, 10*time.Second)
	if queued.GetHost() != "local" || queued.GetMessage() != "Job queued (512x512, 20 steps)." ||
		queued.GetValues()["seed"] != float64(p.GetSeed()) || queued.GetValues()["steps"] != 20 {
		t.Fatalf("queued event: host %q %q %v", queued.GetHost(), queued.GetMessage(), queued.GetValues())
	}
	waitJobStep(t, s, id, 1)
	var placement *orchestratorv1.Event
	for _, e := range s.events.all(id) {
		if e.GetHost() != "local" {
			t.Errorf("event %s on host %q: %s", e.GetType(), e.GetHost(), e.GetMessage())
		}
		if e.GetType() == evPlaced && strings.HasPrefix(e.GetMessage(), "Placed on ") {
			placement = e
		}
	}
	if placement == nil {
		t.Fatalf("no placement event; events: %v", s.events.types(id))
	}
	if msg := placement.GetMessage(); !strings.HasPrefix(msg, "Placed on local (best of 1 host(s)") ||
		strings.Contains(msg, "already has the model loaded") || !strings.Contains(msg, "sd-cli, which loads the model for this image") {
		t.Errorf("placement message: %q", msg)
	}
	c, err := s.orch.CancelJob(ctx, &orchestratorv1.CancelJobRequest{Id: id})
	if err != nil || c.GetJob().GetStatus() != orchestratorv1.JobStatus_JOB_STATUS_CANCELLED || c.GetJob().GetFinishedAt() == nil {
		t.Fatalf("CancelJob of the running job: %v %v, want it CANCELLED", c.GetJob(), err)
	}
	waitNotBusy(t, s)
}

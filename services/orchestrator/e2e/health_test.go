package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
)

// busyFlipBound is how soon GetHealth must say busy after a generation starts or ends
// (issue 16): it answers from the diffusion service's WatchInfo stream, not per request.
const busyFlipBound = 50 * time.Millisecond

// gatewayHealthMaxAge is the gateway's DefaultHealthMaxAge (an internal package of
// another module): GET /health may answer from a GetHealth call that started this long
// before the request, so through the gateway busy flips within busyFlipBound plus it.
const gatewayHealthMaxAge = 10 * time.Millisecond

// GetHealth's busy follows a generation run directly on the diffusion service (not through
// the orchestrator, whose own jobs it knows of in memory): it flips within busyFlipBound of
// the client seeing the generation start (its first progress message) and end (its result).
// The stand-in engine gives the generation a known length (10 steps of 30 ms). The
// gateway's GET /health follows within gatewayHealthMaxAge more.
func TestHealthBusyFollowsTheEngineWithin50ms(t *testing.T) {
	s := newStack(t, stackOptions{StandIn: true, StepMS: 30, Gateway: true})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	orchBusy := func() bool {
		r, err := s.orch.GetHealth(ctx, &orchestratorv1.GetHealthRequest{})
		if err != nil || r.GetStatus() != "ok" {
			t.Fatalf("GetHealth: %v %v", r, err)
		}
		return r.GetBusy()
	}
	gatewayBusy := func() bool {
		resp, err := http.Get(s.gateway + "/health")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var h struct {
			Status string `json:"status"`
			Busy   *bool  `json:"busy"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&h); err != nil || resp.StatusCode != http.StatusOK || h.Status != "ok" || h.Busy == nil {
			t.Fatalf("GET /health: %d %+v %v", resp.StatusCode, h, err)
		}
		return *h.Busy
	}
	// flips asks busy until it says want, and returns how long that took from since.
	flips := func(busy func() bool, want bool, since time.Time) time.Duration {
		for busy() != want {
			if time.Since(since) > 10*time.Second {
				t.Fatalf("busy still not %v after 10 s", want)
			}
		}
		return time.Since(since)
	}
	// check waits for both answers to say want, each within its bound from since.
	check := func(want bool, since time.Time, what string) {
		if d := flips(orchBusy, want, since); d > busyFlipBound {
			t.Errorf("GetHealth busy=%v %v after the generation %s (bound %v)", want, d, what, busyFlipBound)
		}
		if d := flips(gatewayBusy, want, since); d > busyFlipBound+gatewayHealthMaxAge {
			t.Errorf("GET /health busy=%v %v after the generation %s (bound %v)", want, d, what, busyFlipBound+gatewayHealthMaxAge)
		}
	}
	// The relay's stream is connected once an idle answer comes from it; idle first.
	flips(orchBusy, false, time.Now())
	flips(gatewayBusy, false, time.Now())
	stream, err := s.diff.GenerateImage(ctx, &diffusionv1.GenerateImageRequest{Params: &diffusionv1.ImageParams{
		Prompt: "health", Width: proto.Int32(64), Height: proto.Int32(64), Steps: proto.Int32(10), Seed: ptr(int64(3))}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	check(true, time.Now(), "started")
	for {
		m, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if m.GetResult() != nil {
			break
		}
	}
	check(false, time.Now(), "ended")
}

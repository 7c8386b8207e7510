package e2e

import (
	"context"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
)

// busyFlipBound is how soon GetHealth must say busy after a generation starts or ends
// (issue 16): it answers from the diffusion service's WatchInfo stream, not per request.
const busyFlipBound = 50 * time.Millisecond

// GetHealth's busy follows a generation run directly on the diffusion service (not through
// the orchestrator, whose own jobs it knows of in memory): it flips within busyFlipBound of
// the client seeing the generation start (its first progress message) and end (its result).
// The stand-in engine gives the generation a known length (10 steps of 30 ms).
func TestHealthBusyFollowsTheEngineWithin50ms(t *testing.T) {
	s := newStack(t, stackOptions{StandIn: true, StepMS: 30})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	busy := func() bool {
		r, err := s.orch.GetHealth(ctx, &orchestratorv1.GetHealthRequest{})
		if err != nil || r.GetStatus() != "ok" {
			t.Fatalf("GetHealth: %v %v", r, err)
		}
		return r.GetBusy()
	}
	// flips asks GetHealth until it says want, and returns how long that took from since.
	flips := func(want bool, since time.Time) time.Duration {
		for busy() != want {
			if time.Since(since) > 10*time.Second {
				t.Fatalf("busy still not %v after 10 s", want)
			}
		}
		return time.Since(since)
	}
	// The relay's stream is connected once an idle answer comes from it; idle first.
	flips(false, time.Now())
	stream, err := s.diff.GenerateImage(ctx, &diffusionv1.GenerateImageRequest{Params: &diffusionv1.ImageParams{
		Prompt: "health", Width: proto.Int32(64), Height: proto.Int32(64), Steps: proto.Int32(10), Seed: ptr(int64(3))}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	if d := flips(true, time.Now()); d > busyFlipBound {
		t.Errorf("busy %v after the generation started (bound %v)", d, busyFlipBound)
	}
	for {
		m, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if m.GetResult() != nil {
			break
		}
	}
	if d := flips(false, time.Now()); d > busyFlipBound {
		t.Errorf("still busy %v after the generation ended (bound %v)", d, busyFlipBound)
	}
}

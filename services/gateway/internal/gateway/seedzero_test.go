package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/pkg/grpcerr"
	"github.com/genailab/genailab/pkg/imagereq"
)

// refusingOrchestrator checks CreateImage with the one image-request validator, as the
// orchestrator does before queuing, and records what it was sent.
type refusingOrchestrator struct {
	orchestratorv1.UnimplementedOrchestratorServiceServer
	mu   sync.Mutex
	sent []*orchestratorv1.CreateImageRequest
}

func (o *refusingOrchestrator) CreateImage(_ context.Context, r *orchestratorv1.CreateImageRequest) (*orchestratorv1.CreateImageResponse, error) {
	o.mu.Lock()
	o.sent = append(o.sent, r)
	o.mu.Unlock()
	p := &diffusionv1.ImageParams{Prompt: r.Prompt, Width: r.Width, Height: r.Height, Steps: r.Steps}
	if err := imagereq.Validate(p); err != nil {
		return nil, grpcerr.Status(grpcerr.Invalidf("%s", err.Error()))
	}
	return &orchestratorv1.CreateImageResponse{Format: "png"}, nil
}

// Issue 13: through the gateway, the seed's "steps": 0 (and width, height) reached the
// orchestrator as "not sent" and took the default. It arrives as sent, 0, and is refused
// with 400 in the seed's error shape; left out, it stays unset.
func TestSeedContractExplicitZeroIs400(t *testing.T) {
	orch := &refusingOrchestrator{}
	url := startGateway(t, orch, "")
	for _, field := range []string{"steps", "width", "height"} {
		resp, body := post(t, url+"/v1/images/generations", []byte(fmt.Sprintf(`{"prompt":"x",%q:0}`, field)))
		var e map[string]any
		_ = json.Unmarshal(body, &e)
		if msg, _ := e["error"].(string); resp.StatusCode != 400 || len(e) != 1 || !strings.Contains(msg, field+" must") || !strings.Contains(msg, "got 0") {
			t.Errorf("%s 0: %d %s", field, resp.StatusCode, body)
		}
	}
	resp, body := post(t, url+"/v1/images/generations", []byte(`{"prompt":"x"}`))
	if resp.StatusCode != 200 {
		t.Fatalf("omitted: %d %s", resp.StatusCode, body)
	}
	orch.mu.Lock()
	defer orch.mu.Unlock()
	if len(orch.sent) != 4 || orch.sent[0].Steps == nil || orch.sent[1].Width == nil || orch.sent[2].Height == nil {
		t.Fatalf("explicit zeros were not sent as set: %v", orch.sent)
	}
	if last := orch.sent[3]; last.Width != nil || last.Height != nil || last.Steps != nil {
		t.Fatalf("omitted fields were sent as set: %v", last)
	}
}

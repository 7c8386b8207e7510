package gateway

import (
	"context"
	"testing"

	"google.golang.org/grpc"

	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
)

// instantHealthClient answers GetHealth at once, not busy; the other methods are not used.
type instantHealthClient struct {
	orchestratorv1.OrchestratorServiceClient
}

func (instantHealthClient) GetHealth(context.Context, *orchestratorv1.GetHealthRequest, ...grpc.CallOption) (*orchestratorv1.GetHealthResponse, error) {
	return &orchestratorv1.GetHealthResponse{Status: "ok"}, nil
}

// Regression (CI of stop 26): the caller loop closed a call's done channel before it
// recorded the call as the latest answer, so a request that came right after the
// answer (the next GET on the same connection) could find no answer to reuse and make a
// second call within the max age. An answered call must already be the one reused.
func TestHealthAnswerIsReusableOnceItsRequestsHaveIt(t *testing.T) {
	for i := range 2000 {
		g := &healthGroup{client: instantHealthClient{}, maxAge: 1 << 62}
		c, err := g.get(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		g.mu.Lock()
		last := g.last
		g.mu.Unlock()
		if last != c {
			t.Fatalf("round %d: a request has the answer, but the next one would not reuse it (last %p, answer %p)", i, last, c)
		}
	}
}

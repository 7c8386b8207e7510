package gateway

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"

	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
)

// The orchestrator's health detail metadata, and the header grpc-gateway relays it as;
// the bound of one GetHealth call.
const (
	healthDetailMD     = "genailab-health-detail"
	healthDetailHeader = "Grpc-Metadata-Genailab-Health-Detail"
	healthCallTimeout  = 5 * time.Second
)

// DefaultHealthMaxAge is how old a successful GetHealth answer may be and still answer
// a GET /health that arrives after it (Options.HealthMaxAge). The orchestrator's own
// answer follows the engines within 50 ms (its health relay); 10 ms more keeps a
// busy flip visible at the gateway well within what a load balancer or a panel needs,
// and lets a request under load be answered at once instead of waiting for a round
// trip.
const DefaultHealthMaxAge = 10 * time.Millisecond

// healthGroup answers GET /health from one orchestrator GetHealth call shared by the
// requests that arrive while another call is in flight. A request gets the latest
// successful answer if its call started at most maxAge before the request arrived;
// otherwise it waits for a call that started after it arrived (never an older state).
// The orchestrator sees at most one call at a time and, under load, about one per
// maxAge instead of one per request. The body and headers are those
// grpc-gateway wrote: {"status": ..., "busy": ...} and the health detail header.
type healthGroup struct {
	client orchestratorv1.OrchestratorServiceClient
	mux    *runtime.ServeMux
	// maxAge bounds the age of the answer a request may get without a call of its own;
	// 0 or less: every request waits for a call that started after it arrived.
	maxAge time.Duration

	mu      sync.Mutex
	next    *healthCall
	last    *healthCall // the latest successful call, answered
	running bool
}

// healthCall is one GetHealth call and its answer, made once for all its requests: the
// body (marshaled here, not per request: under load a call answers tens of requests) and
// the detail header's values, or the error.
type healthCall struct {
	done    chan struct{}
	started time.Time
	body    []byte
	detail  []string
	err     error
}

// healthMarshal writes the body as grpc-gateway's marshaler does (EmitUnpopulated: busy
// false is written).
var healthMarshal = protojson.MarshalOptions{EmitUnpopulated: true}

// get joins the next call (starting the caller loop when idle) and waits for its answer.
func (g *healthGroup) get(ctx context.Context) (*healthCall, error) {
	now := time.Now()
	g.mu.Lock()
	if l := g.last; l != nil && now.Sub(l.started) <= g.maxAge {
		g.mu.Unlock()
		return l, nil
	}
	if g.next == nil {
		g.next = &healthCall{done: make(chan struct{})}
	}
	c := g.next
	if !g.running {
		g.running = true
		go g.run()
	}
	g.mu.Unlock()
	select {
	case <-c.done:
		return c, c.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// run makes the calls one after another while requests wait for one.
func (g *healthGroup) run() {
	for {
		g.mu.Lock()
		c := g.next
		g.next = nil
		if c == nil {
			g.running = false
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		c.started = time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), healthCallTimeout)
		var md metadata.MD
		resp, err := g.client.GetHealth(ctx, &orchestratorv1.GetHealthRequest{}, grpc.Header(&md))
		cancel()
		if err == nil {
			c.body, err = healthMarshal.Marshal(resp)
		}
		c.detail, c.err = md.Get(healthDetailMD), err
		// Record the answer before its requests have it: the next request (the next GET
		// on a keep-alive connection, say) must find it to reuse.
		g.mu.Lock()
		if err == nil {
			g.last = c
		} else {
			g.last = nil // an error is not kept: the next request asks again
		}
		g.mu.Unlock()
		close(c.done)
	}
}

// ServeHTTP implements http.Handler.
func (g *healthGroup) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c, err := g.get(r.Context())
	if err != nil {
		_, m := runtime.MarshalerForRequest(g.mux, r)
		runtime.HTTPError(r.Context(), g.mux, m, w, r, err)
		return
	}
	h := w.Header()
	for _, v := range c.detail {
		h.Add(healthDetailHeader, v)
	}
	h.Set("Content-Type", "application/json")
	_, _ = w.Write(c.body)
}

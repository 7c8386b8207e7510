package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/services/gateway/internal/gateway"
)

// gatedOrchestrator holds each GetHealth until released, counting the calls; busy is what
// the calls made after flip see.
type gatedOrchestrator struct {
	orchestratorv1.UnimplementedOrchestratorServiceServer
	calls   atomic.Int32
	entered chan struct{}
	release chan struct{}
	busy    atomic.Bool
}

func (o *gatedOrchestrator) GetHealth(context.Context, *orchestratorv1.GetHealthRequest) (*orchestratorv1.GetHealthResponse, error) {
	o.calls.Add(1)
	busy := o.busy.Load()
	o.entered <- struct{}{}
	<-o.release
	return &orchestratorv1.GetHealthResponse{Status: "ok", Busy: busy}, nil
}

// getBody is a GET's body, "" after an error (reported).
func getBody(t *testing.T, url string) string {
	resp, err := http.Get(url)
	if err != nil {
		t.Error(err)
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// Requests that arrive while a GetHealth call is in flight share the next call, which
// starts after they arrived: they see the state as of then (busy), not the older answer.
// (With no max age: each request waits for a call of its own time.)
func TestHealthRequestsShareOneFreshCall(t *testing.T) {
	o := &gatedOrchestrator{entered: make(chan struct{}), release: make(chan struct{})}
	url := startGatewayWith(t, o, gateway.Options{HealthMaxAge: -1}) + "/health"
	get := func() string { return getBody(t, url) }
	first := make(chan string, 1)
	go func() { first <- get() }()
	<-o.entered // call 1 is in flight, made while idle
	o.busy.Store(true)
	const n = 20
	var wg sync.WaitGroup
	bodies := make(chan string, n)
	for range n {
		wg.Add(1)
		go func() { defer wg.Done(); bodies <- get() }()
	}
	// The n requests cannot all have reached the gateway yet when call 1 ends; the ones
	// that have not share later calls. Release call by call until all are answered.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	o.release <- struct{}{}
	for {
		select {
		case <-o.entered:
			o.release <- struct{}{}
			continue
		case <-done:
		}
		break
	}
	close(bodies)
	busyOf := func(b string) bool {
		var h struct {
			Status string `json:"status"`
			Busy   *bool  `json:"busy"`
		}
		if err := json.Unmarshal([]byte(b), &h); err != nil || h.Status != "ok" || h.Busy == nil {
			t.Fatalf("health body %q (%v)", b, err)
		}
		return *h.Busy
	}
	if busyOf(<-first) {
		t.Fatal("the first answer is busy")
	}
	for b := range bodies {
		if !busyOf(b) {
			t.Fatalf("a request that came after busy flipped got %q", b)
		}
	}
	t.Logf("%d GetHealth calls for %d requests", o.calls.Load(), n+1)
}

// A request that arrives within HealthMaxAge of a successful call's start is answered
// from it without a call; one that arrives later waits for a new call and sees the new
// state. The ages are far from the test's own timing: a max age of an hour (reused) and
// of a nanosecond (never reused).
func TestHealthAnswerWithinMaxAgeIsReused(t *testing.T) {
	for _, tc := range []struct {
		maxAge time.Duration
		reused bool
	}{{time.Hour, true}, {time.Nanosecond, false}} {
		t.Run(tc.maxAge.String(), func(t *testing.T) {
			o := &gatedOrchestrator{entered: make(chan struct{}, 2), release: make(chan struct{}, 2)}
			o.release <- struct{}{}
			o.release <- struct{}{}
			url := startGatewayWith(t, o, gateway.Options{HealthMaxAge: tc.maxAge}) + "/health"
			if b := getBody(t, url); !strings.Contains(b, `"busy":false`) {
				t.Fatalf("first answer %q", b)
			}
			o.busy.Store(true)
			b := getBody(t, url)
			calls := o.calls.Load()
			if tc.reused && (calls != 1 || !strings.Contains(b, `"busy":false`)) {
				t.Fatalf("within the max age: %d calls, answer %q (want 1 call, the first answer)", calls, b)
			}
			if !tc.reused && (calls != 2 || !strings.Contains(b, `"busy":true`)) {
				t.Fatalf("after the max age: %d calls, answer %q (want a second call, busy)", calls, b)
			}
		})
	}
}

// An error is not kept: each request after a failed call asks again.
func TestHealthErrorIsNotReused(t *testing.T) {
	o := &detailOrchestrator{err: status.Error(codes.Unavailable, "down")}
	url := startGatewayWith(t, o, gateway.Options{HealthMaxAge: time.Hour}) + "/health"
	for range 2 {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("GET /health: %d, want 503", resp.StatusCode)
		}
	}
	if n := o.calls.Load(); n != 2 {
		t.Fatalf("%d GetHealth calls for 2 requests after errors, want 2", n)
	}
}

// detailOrchestrator answers GetHealth with the health detail header, or with err,
// counting the calls.
type detailOrchestrator struct {
	orchestratorv1.UnimplementedOrchestratorServiceServer
	err   error
	calls atomic.Int32
}

func (o *detailOrchestrator) GetHealth(ctx context.Context, _ *orchestratorv1.GetHealthRequest) (*orchestratorv1.GetHealthResponse, error) {
	o.calls.Add(1)
	if o.err != nil {
		return nil, o.err
	}
	if err := grpc.SetHeader(ctx, metadata.Pairs("genailab-health-detail", "llm: crash looping")); err != nil {
		return nil, err
	}
	return &orchestratorv1.GetHealthResponse{Status: "ok", Busy: true}, nil
}

// A plain GET /health is answered before the routing (healthFirst); with a query it takes
// the whole chain (muxes, guard, edge). Both answer the same status, headers and body
// bytes, the answer and an orchestrator's error alike; HEAD gets GET's headers.
func TestHealthFastPathAnswersAsTheChain(t *testing.T) {
	for _, o := range []*detailOrchestrator{{}, {err: status.Error(codes.Unavailable, "orchestrator down")}} {
		url := startGateway(t, o, "tok") + "/health"
		do := func(method, url string) (int, http.Header, string) {
			req, _ := http.NewRequest(method, url, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			resp.Header.Del("Date")
			return resp.StatusCode, resp.Header, string(b)
		}
		code, h, body := do(http.MethodGet, url)
		chainCode, chainH, chainBody := do(http.MethodGet, url+"?probe=1")
		if code != chainCode || body != chainBody || !reflect.DeepEqual(h, chainH) {
			t.Errorf("orchestrator error %v:\nfast  %d %v %s\nchain %d %v %s", o.err, code, h, body, chainCode, chainH, chainBody)
		}
		headCode, headH, headBody := do(http.MethodHead, url)
		if headCode != code || headBody != "" || !reflect.DeepEqual(headH, h) {
			t.Errorf("HEAD: %d %v %q, GET: %d %v", headCode, headH, headBody, code, h)
		}
		if o.err == nil && (code != http.StatusOK || h.Get("Grpc-Metadata-Genailab-Health-Detail") != "llm: crash looping" ||
			h.Get("Content-Type") != "application/json") {
			t.Errorf("answer: %d %v %s", code, h, body)
		}
		if o.err != nil && code != http.StatusServiceUnavailable {
			t.Errorf("orchestrator down: %d %s", code, body)
		}
	}
}

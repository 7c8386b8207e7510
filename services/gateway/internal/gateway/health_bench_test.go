package gateway_test

import (
	"context"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"

	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/pkg/grpcserver"
	"github.com/genailab/genailab/services/gateway/internal/gateway"
)

// countingOrchestrator answers GetHealth at once, counting the calls.
type countingOrchestrator struct {
	orchestratorv1.UnimplementedOrchestratorServiceServer
	calls atomic.Int64
}

func (o *countingOrchestrator) GetHealth(ctx context.Context, _ *orchestratorv1.GetHealthRequest) (*orchestratorv1.GetHealthResponse, error) {
	o.calls.Add(1)
	return &orchestratorv1.GetHealthResponse{Status: "ok"}, nil
}

// discardWriter is a response writer that keeps the status and the body's length: the
// benchmark measures the gateway's handler, not a connection.
type discardWriter struct {
	h    http.Header
	code int
	n    int
}

func (w *discardWriter) Header() http.Header { return w.h }

func (w *discardWriter) WriteHeader(code int) { w.code = code }

func (w *discardWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	w.n += len(p)
	return len(p), nil
}

// BenchmarkHealthHandler serves GET /health through the gateway's whole handler, in
// process, from 50 goroutines (the e2e BenchmarkHealthVsTrivialServer's connections) over
// a loopback orchestrator: the CPU and allocations per request of the chain around the
// shared GetHealth call, which the e2e benchmark cannot show apart from its three
// processes. It reports the GetHealth calls per request.
func BenchmarkHealthHandler(b *testing.B) {
	s, err := grpcserver.Listen(grpcserver.Options{Addr: "127.0.0.1:0"})
	if err != nil {
		b.Fatal(err)
	}
	orch := &countingOrchestrator{}
	orchestratorv1.RegisterOrchestratorServiceServer(s.GRPC(), orch)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	defer func() { cancel(); <-done }()
	g, err := gateway.New(ctx, gateway.Options{Backends: gateway.Backends{Orchestrator: s.Addr()}})
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	u, _ := url.Parse("/health")
	base := &http.Request{Method: http.MethodGet, URL: u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"User-Agent": {"bench"}}, Body: http.NoBody, Host: "127.0.0.1", RemoteAddr: "127.0.0.1:1"}
	serve := func(w *discardWriter) {
		clear(w.h)
		w.code, w.n = 0, 0
		r := *base // a handler may set the request's fields (its body)
		g.ServeHTTP(w, &r)
		if w.code != http.StatusOK || w.n == 0 {
			b.Errorf("GET /health: %d, %d bytes", w.code, w.n)
		}
	}
	serve(&discardWriter{h: http.Header{}}) // connect
	calls := orch.calls.Load()
	b.SetParallelism(25) // 50 goroutines with GOMAXPROCS 2 (the lab's machine)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := &discardWriter{h: http.Header{}}
		for pb.Next() {
			serve(w)
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(orch.calls.Load()-calls)/float64(b.N), "calls/op")
}

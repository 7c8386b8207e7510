package server_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/genailab/genailab/pkg/metricsserver"
	"github.com/genailab/genailab/pkg/metricsserver/metricstest"
	"github.com/genailab/genailab/services/gateway/internal/gateway"
	"github.com/genailab/genailab/services/gateway/internal/server"
)

// waitFile returns the content of path once written, failing if Run ends first.
func waitFile(t *testing.T, path string, done chan error) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
			return strings.TrimSpace(string(b))
		}
		select {
		case err := <-done:
			t.Fatalf("Run ended: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	t.Fatalf("%s never appeared", path)
	return ""
}

// Requests through a real gateway (its backends down) show on /metrics by surface,
// method and code, whatever their path; the exposition's shape is the golden file's.
func TestMetricsOfRequests(t *testing.T) {
	dir := t.TempDir()
	addrFile, metricsFile := filepath.Join(dir, "addr"), filepath.Join(dir, "metrics.addr")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	down := "127.0.0.1:1"
	go func() {
		done <- server.Run(ctx, server.Options{
			HTTPAddr: "127.0.0.1:0", AddrFile: addrFile,
			Backends: gateway.Backends{LLM: down, Diffusion: down, Monitor: down, Orchestrator: down},
			Metrics:  metricsserver.Options{Addr: "127.0.0.1:0", AddrFile: metricsFile},
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	base := "http://" + waitFile(t, addrFile, done)
	for _, path := range []string{"/health", "/v1/no-such-thing-1", "/v1/no-such-thing-2", "/nowhere"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	fams := metricstest.Golden(t, "http://"+waitFile(t, metricsFile, done)+"/metrics", filepath.Join("testdata", "metrics.golden"))
	for _, c := range []struct {
		surface string
		want    float64
	}{{"health", 1}, {"rest", 2}, {"other", 1}} {
		var got float64
		for _, m := range fams["genailab_gateway_http_requests_total"].GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "surface" && lp.GetValue() == c.surface {
					got += m.GetCounter().GetValue()
				}
			}
		}
		if got != c.want {
			t.Errorf("%s requests %v, want %v", c.surface, got, c.want)
		}
	}
	if n := len(fams["genailab_gateway_http_request_duration_seconds"].GetMetric()); n != 3 {
		t.Errorf("%d duration series, want 3 (one per surface and method used)", n)
	}
}

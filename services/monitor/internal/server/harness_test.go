package server

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	monitorv1 "github.com/genailab/genailab/gen/monitor/v1"
	"github.com/genailab/genailab/services/monitor/internal/proctest"
)

func TestMain(m *testing.M) {
	maybeMonitorHelper()
	proctest.MaybeHelper()
	os.Exit(m.Run())
}

// harness is a monitor started with Run on loopback ports, and a client.
type harness struct {
	client     monitorv1.MonitorServiceClient
	conn       *grpc.ClientConn
	metricsURL string
	logs       *logBuffer
	stop       func() error // cancels Run and returns its error
}

// start runs the monitor with opts (addresses on free loopback ports) until
// the test ends. dial options are added to the client's.
func start(t *testing.T, opts Options, dial ...grpc.DialOption) *harness {
	t.Helper()
	dir := t.TempDir()
	logs := &logBuffer{}
	opts.GRPC.Addr = "127.0.0.1:0"
	opts.GRPC.AddrFile = filepath.Join(dir, "grpc.addr")
	if opts.MetricsAddr == "" {
		opts.MetricsAddr = "127.0.0.1:0"
		opts.MetricsAddrFile = filepath.Join(dir, "metrics.addr")
	}
	if opts.DataDir == "" {
		opts.DataDir = dir
	}
	if opts.Logger == nil {
		opts.Logger = logs.logger()
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, opts) }()

	h := &harness{logs: logs}
	var once sync.Once
	var runErr error
	h.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(30 * time.Second):
				t.Error("Run did not return after cancel")
			}
		})
		return runErr
	}
	t.Cleanup(func() {
		if h.conn != nil {
			h.conn.Close()
		}
		if err := h.stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	addr := waitFile(t, opts.GRPC.AddrFile, done)
	if opts.MetricsAddrFile != "" {
		h.metricsURL = "http://" + waitFile(t, opts.MetricsAddrFile, done) + "/metrics"
	}
	conn, err := grpc.NewClient(addr, append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, dial...)...)
	if err != nil {
		t.Fatal(err)
	}
	h.conn = conn
	h.client = monitorv1.NewMonitorServiceClient(conn)
	return h
}

// waitFile waits for Run to write an address file.
func waitFile(t *testing.T, path string, done <-chan error) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
			return string(b)
		}
		select {
		case err := <-done:
			t.Fatalf("Run returned before listening: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no address in %s", path)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// scrapeClient opens a connection per scrape, so that scraping leaves no
// idle connection (and goroutines) behind.
var scrapeClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// scrape fetches /metrics over HTTP and parses it with Prometheus' parser.
func (h *harness) scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := scrapeClient.Get(h.metricsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// gauge returns the single value of family name (summing if there are
// several series with matching labels).
func gauge(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, int) {
	f := fams[name]
	if f == nil {
		return 0, 0
	}
	sum, n := 0.0, 0
	for _, m := range f.Metric {
		match := 0
		for _, lp := range m.Label {
			if v, ok := labels[lp.GetName()]; ok && v == lp.GetValue() {
				match++
			}
		}
		if match != len(labels) {
			continue
		}
		n++
		switch {
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		}
	}
	return sum, n
}

// waitFor polls cond until it holds, failing after a generous deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// logBuffer is a concurrency-safe log sink for asserting on log records.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// Count returns how many log lines contain s.
func (b *logBuffer) Count(s string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Count(b.buf.String(), s)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

package metricsserver_test

import (
	"errors"
	"flag"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/genailab/genailab/pkg/metricsserver"
	"github.com/genailab/genailab/pkg/metricsserver/metricstest"
)

// A served registry reports, for each source, whether this scrape read it and how long
// that took; a failing source's series sent before the failure still count.
func TestSourcesReportTheirScrape(t *testing.T) {
	good := prometheus.NewDesc("genailab_test_value", "A value.", []string{"kind"}, nil)
	reg, err := metricsserver.NewRegistry(metricsserver.Sources(nil,
		metricsserver.Source{Name: "good", Collect: func(ch chan<- prometheus.Metric) error {
			ch <- prometheus.MustNewConstMetric(good, prometheus.GaugeValue, 7, "a")
			return nil
		}},
		metricsserver.Source{Name: "broken", Collect: func(ch chan<- prometheus.Metric) error {
			ch <- prometheus.MustNewConstMetric(good, prometheus.GaugeValue, 1, "b")
			return errors.New("engine unreachable")
		}},
	))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "metrics.addr")
	srv, err := metricsserver.Start(reg, metricsserver.Options{Addr: "127.0.0.1:0", AddrFile: file})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	fams := metricstest.Golden(t, "http://"+srv.Addr()+"/metrics", filepath.Join("testdata", "sources.golden"))
	for _, c := range []struct {
		name, collector string
		want            float64
	}{{"genailab_scrape_collector_success", "good", 1}, {"genailab_scrape_collector_success", "broken", 0}} {
		if got := metricstest.Value(t, fams, c.name, map[string]string{"collector": c.collector}); got != c.want {
			t.Errorf("%s{collector=%q} = %v, want %v", c.name, c.collector, got, c.want)
		}
	}
	if got := metricstest.Value(t, fams, "genailab_test_value", map[string]string{"kind": "b"}); got != 1 {
		t.Errorf("the broken source's series = %v, want 1", got)
	}
	if _, ok := fams["go_goroutines"]; !ok {
		t.Error("no Go runtime series")
	}
}

// /metrics is unauthenticated: a non-loopback address needs AllowRemote, and "" or "off"
// serves nothing.
func TestRemoteRefusedAndOff(t *testing.T) {
	reg, err := metricsserver.NewRegistry()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := metricsserver.Start(reg, metricsserver.Options{Addr: "0.0.0.0:0"}); !errors.Is(err, metricsserver.ErrRemote) {
		t.Fatalf("non-loopback: %v, want ErrRemote", err)
	}
	for _, addr := range []string{"", metricsserver.Off} {
		if srv, err := metricsserver.Start(reg, metricsserver.Options{Addr: addr}); srv != nil || err != nil {
			t.Fatalf("%q: %v, %v; want nothing served", addr, srv, err)
		}
	}
}

// Regression: with a fixed default address every service a test harness started on
// ephemeral gRPC ports bound the same metrics port, and the second harness's services
// failed with "address already in use". Without -metrics-addr nothing is served.
func TestFlagsDefaultToNoFixedPort(t *testing.T) {
	var o metricsserver.Options
	fs := flag.NewFlagSet("svc", flag.ContinueOnError)
	o.Register(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if o.Enabled() {
		t.Fatalf("default -metrics-addr %q serves /metrics", o.Addr)
	}
	if err := fs.Parse([]string{"-metrics-addr", "127.0.0.1:0", "-metrics-addr-file", "/x"}); err != nil {
		t.Fatal(err)
	}
	if !o.Enabled() || o.AddrFile != "/x" || o.Check() != nil {
		t.Fatalf("after -metrics-addr: %+v", o)
	}
}

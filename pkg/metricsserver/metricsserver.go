// Package metricsserver is the Prometheus side every genailab service shares: a private
// registry holding the service's collectors and its own Go runtime and process series,
// the status of each source a scrape reads (genailab_scrape_collector_success and
// genailab_scrape_collector_duration_seconds, labelled collector, as node_exporter's
// node_scrape_collector_*), and the /metrics HTTP listener.
//
// /metrics is unauthenticated: Start refuses a non-loopback address unless allowed. No
// series carries a label with unbounded values (no pid, no job id): see METRICS.md.
package metricsserver

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/genailab/genailab/pkg/grpcserver"
	"github.com/genailab/genailab/pkg/httpserver"
)

// Off as Options.Addr disables /metrics (as does "").
const Off = "off"

// ErrRemote is returned for a non-loopback metrics address without Options.AllowRemote.
var ErrRemote = errors.New("refusing to serve unauthenticated /metrics on a non-loopback address (allow it explicitly)")

// Options configure the /metrics listener.
type Options struct {
	// Addr is the HTTP listen address; "" or Off serves nothing. Port 0 picks a free port.
	Addr string
	// AddrFile, when set, receives the bound address once listening.
	AddrFile string
	// AllowRemote allows a non-loopback Addr (/metrics is not authenticated).
	AllowRemote bool
	Logger      *slog.Logger
}

// Enabled tells whether o serves /metrics.
func (o Options) Enabled() bool { return o.Addr != "" && o.Addr != Off }

// Check returns ErrRemote (wrapped) for a non-loopback address that is not allowed; call
// it before anything starts.
func (o Options) Check() error {
	if o.Enabled() && !o.AllowRemote && !grpcserver.IsLoopback(o.Addr) {
		return fmt.Errorf("metrics address %s: %w", o.Addr, ErrRemote)
	}
	return nil
}

// NewRegistry returns a private registry with cs and the process's Go runtime and
// process collectors.
func NewRegistry(cs ...prometheus.Collector) (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	cs = append(cs, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics collector: %w", err)
		}
	}
	return reg, nil
}

// Handler serves g in the Prometheus exposition formats.
func Handler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{})
}

// Start serves g on GET /metrics at o.Addr in the background. It returns a nil server
// (and no error) when o is not Enabled.
func Start(g prometheus.Gatherer, o Options) (*httpserver.Server, error) {
	if !o.Enabled() {
		return nil, nil
	}
	if err := o.Check(); err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", Handler(g))
	return httpserver.Start(httpserver.Options{Name: "metrics", Addr: o.Addr, AddrFile: o.AddrFile, Handler: mux, Logger: o.Logger})
}

// Source is one thing a scrape reads (a snapshot, NVML, an engine's /metrics): Collect
// sends its series and returns an error when the source could not be read (what it
// sent before still counts).
type Source struct {
	Name    string
	Collect func(ch chan<- prometheus.Metric) error
}

var (
	scrapeSuccess  = prometheus.NewDesc("genailab_scrape_collector_success", "1 when the source was read at this scrape, 0 when it failed.", []string{"collector"}, nil)
	scrapeDuration = prometheus.NewDesc("genailab_scrape_collector_duration_seconds", "Time this scrape spent reading the source.", []string{"collector"}, nil)
)

// Sources is a collector that reads every source at each scrape, followed by its
// genailab_scrape_collector_success and _duration_seconds. It is unchecked (its series
// come and go with the sources' data).
func Sources(log *slog.Logger, srcs ...Source) prometheus.Collector {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return sources{log: log, srcs: srcs}
}

type sources struct {
	log  *slog.Logger
	srcs []Source
}

func (sources) Describe(chan<- *prometheus.Desc) {}

func (s sources) Collect(ch chan<- prometheus.Metric) {
	for _, src := range s.srcs {
		start := time.Now()
		err := src.Collect(ch)
		ok := 1.0
		if err != nil {
			ok = 0
			s.log.Debug("metrics source failed", "collector", src.Name, "error", err)
		}
		ch <- prometheus.MustNewConstMetric(scrapeDuration, prometheus.GaugeValue, time.Since(start).Seconds(), src.Name)
		ch <- prometheus.MustNewConstMetric(scrapeSuccess, prometheus.GaugeValue, ok, src.Name)
	}
}

// Register adds -metrics-addr (default off: a service started by hand or by a test binds
// no fixed port unless told; genailab up gives each one), -metrics-addr-file and
// -metrics-allow-remote to fs, setting o.
func (o *Options) Register(fs *flag.FlagSet) {
	fs.StringVar(&o.Addr, "metrics-addr", Off, `HTTP listen address of Prometheus /metrics, e.g. 127.0.0.1:9401 ("off": none)`)
	fs.StringVar(&o.AddrFile, "metrics-addr-file", "", "write the bound metrics address to this file once listening")
	fs.BoolVar(&o.AllowRemote, "metrics-allow-remote", false, "allow /metrics (unauthenticated) on a non-loopback address")
}

package server

import (
	"log/slog"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/genailab/genailab/pkg/metricsserver"
)

// The gateway's Prometheus series: its HTTP requests by surface (rest, openai, health,
// other: bounded, unlike paths), method and status code, their duration (to the end of
// the body: a whole streamed reply), and those in flight. What the requests do is
// measured where it happens (the LLM service's chats, the orchestrator's jobs).

var requestBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}

// instrument wraps h with the request series and serves them on o; stop ends the
// metrics listener (a no-op when off, and h is returned as is).
func instrument(h http.Handler, o metricsserver.Options, log *slog.Logger) (http.Handler, func(), error) {
	if !o.Enabled() {
		return h, func() {}, nil
	}
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "genailab_gateway_http_requests_total",
		Help: "HTTP requests answered, by surface (rest, openai, health, other), method and status code (promhttp's spelling: lower case)."}, []string{"surface", "method", "code"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "genailab_gateway_http_request_duration_seconds",
		Help: "Time to answer an HTTP request, to the end of its body, by surface and method.", Buckets: requestBuckets}, []string{"surface", "method"})
	inFlight := prometheus.NewGauge(prometheus.GaugeOpts{Name: "genailab_gateway_http_requests_in_flight", Help: "HTTP requests being answered."})
	reg, err := metricsserver.NewRegistry(requests, duration, inFlight)
	if err != nil {
		return nil, nil, err
	}
	o.Logger = log
	srv, err := metricsserver.Start(reg, o)
	if err != nil {
		return nil, nil, err
	}
	bySurface := map[string]http.Handler{}
	for _, surface := range surfaces {
		l := prometheus.Labels{"surface": surface}
		bySurface[surface] = promhttp.InstrumentHandlerInFlight(inFlight,
			promhttp.InstrumentHandlerDuration(duration.MustCurryWith(l),
				promhttp.InstrumentHandlerCounter(requests.MustCurryWith(l), h)))
	}
	wrapped := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bySurface[surfaceOf(r.URL.Path)].ServeHTTP(w, r)
	})
	return wrapped, srv.Stop, nil
}

// surfaces are the values of the surface label.
var surfaces = []string{"health", "openai", "rest", "other"}

// surfaceOf names the API a path belongs to.
func surfaceOf(path string) string {
	switch {
	case path == "/health" || strings.HasPrefix(path, "/health/"):
		return "health"
	case strings.HasPrefix(path, "/openai/"):
		return "openai"
	case strings.HasPrefix(path, "/v1/"):
		return "rest"
	}
	return "other"
}

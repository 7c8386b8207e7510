package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/genailab/genailab/pkg/metricsserver"
)

// NewRegistry returns a private registry holding the monitor's series (each part of the
// snapshot with its scrape status) and the monitor process's own Go runtime and process
// series.
func NewRegistry(src Source) (*prometheus.Registry, error) {
	c := collector{src: src}
	return metricsserver.NewRegistry(c, c.sources())
}

// Handler serves reg in the Prometheus exposition format.
func Handler(reg *prometheus.Registry) http.Handler { return metricsserver.Handler(reg) }

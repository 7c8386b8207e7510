package server

import (
	"log/slog"
	"os"

	"github.com/genailab/genailab/pkg/httpserver"
	"github.com/genailab/genailab/pkg/metricsserver"
	"github.com/genailab/genailab/services/llm/internal/service"
)

// startMetrics serves the service's metrics on o (nil server when off); llama-server's
// re-exported series are labelled with this machine's host name.
func startMetrics(s *service.Service, o metricsserver.Options, log *slog.Logger) (*httpserver.Server, error) {
	if !o.Enabled() {
		return nil, nil
	}
	host, err := os.Hostname()
	if err != nil {
		host = "localhost"
	}
	reg, err := metricsserver.NewRegistry(s.MetricsCollectors(host)...)
	if err != nil {
		return nil, err
	}
	o.Logger = log
	return metricsserver.Start(reg, o)
}

package server

import (
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/pkg/httpserver"
	"github.com/genailab/genailab/pkg/metricsserver"
	"github.com/genailab/genailab/services/orchestrator/internal/events"
	"github.com/genailab/genailab/services/orchestrator/internal/hosts"
	"github.com/genailab/genailab/services/orchestrator/internal/jobs"
	"github.com/genailab/genailab/services/orchestrator/internal/metrics"
)

// startMetrics has the event log feed the orchestrator's metrics and serves them on
// o.Metrics (nil server when off).
func startMetrics(o Options, ev *events.Log, mgr *jobs.Manager, reg *hosts.Registry) (*httpserver.Server, error) {
	if !o.Metrics.Enabled() {
		return nil, nil
	}
	m := metrics.New(metrics.Sources{QueueDepth: mgr.QueueLength, QueueCapacity: mgr.QueueCapacity, Hosts: func() []*orchestratorv1.Host { return reg.List(mgr.QueuedPins()) }}, o.Logger)
	ev.Observe(m.Observe)
	r, err := metricsserver.NewRegistry(m.Collectors()...)
	if err != nil {
		return nil, err
	}
	o.Metrics.Logger = o.Logger
	return metricsserver.Start(r, o.Metrics)
}

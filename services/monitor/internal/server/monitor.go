package server

import (
	"context"
	"log/slog"
	"sync"

	monitorv1 "github.com/genailab/genailab/gen/monitor/v1"
	"github.com/genailab/genailab/services/monitor/internal/history"
	"github.com/genailab/genailab/services/monitor/internal/metrics"
	"github.com/genailab/genailab/services/monitor/internal/sampler"
	"github.com/genailab/genailab/services/monitor/internal/telemetry"
)

// sample is one snapshot and its API form, converted once by the sampler
// and shared, read-only, by every subscriber and the history, and its
// WatchUsage wire form, encoded once for every stream (not kept in the
// history).
type sample struct {
	snap  telemetry.Snapshot
	usage *monitorv1.Usage
	wire  wire
}

// Monitor is the service's core: the collector, the samplers, and the
// history recorder that subscribes to the 1 s sampler for the life of the
// Monitor.
type Monitor struct {
	collector *telemetry.Collector
	gpus      *telemetry.GPUs
	hub       *sampler.Hub[*sample]
	ring      *history.Ring[*sample]
	hostname  string
	log       *slog.Logger

	stop context.CancelFunc
	wg   sync.WaitGroup
}

// NewMonitor opens NVML (once), starts the history sampler and returns the
// Monitor; Close releases everything.
func NewMonitor(opts Options) (*Monitor, error) {
	opts = opts.withDefaults()
	log := opts.Logger

	var gpus *telemetry.GPUs
	if opts.NVML != nil {
		gpus = telemetry.OpenGPUs(opts.NVML, "", log)
	} else {
		gpus = telemetry.OpenSystemGPUs(log)
	}
	procs := telemetry.NewProcessTable(opts.ManagedProcessNames, opts.ManagedPIDs)
	if opts.ManagedPIDDir != "" {
		procs.RequireAncestor(telemetry.PIDFileRoots(opts.ManagedPIDDir))
	}
	collector := telemetry.NewCollector(telemetry.NewHost(opts.DataDir), gpus, procs, log)

	newCollect := func() func(context.Context) *sample {
		stream := collector.NewStream()
		return func(ctx context.Context) *sample {
			snap := stream.Next(ctx)
			return &sample{snap: snap, usage: usageProto(snap)}
		}
	}
	m := &Monitor{
		collector: collector,
		gpus:      gpus,
		hub:       sampler.NewHub(newCollect, opts.NewTicker),
		ring:      history.NewRing[*sample](opts.HistoryCapacity),
		log:       log,
	}
	m.hostname, _ = telemetry.NewHost(opts.DataDir).Identity(context.Background())

	sub, err := m.hub.Subscribe(opts.HistoryStep)
	if err != nil {
		m.hub.Close()
		gpus.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.stop = cancel
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer sub.Cancel()
		for {
			u, err := sub.Next(ctx)
			if err != nil {
				return
			}
			// Without the encoded bytes, which only the streams need.
			m.ring.Add(u.Value.snap.Time, &sample{snap: u.Value.snap, usage: u.Value.usage})
		}
	}()
	return m, nil
}

// EndStreams ends every subscription (open WatchUsage streams answer
// Unavailable) and stops the samplers; snapshots taken so far stay readable.
func (m *Monitor) EndStreams() { m.hub.Close() }

// Close stops the samplers and the recorder and shuts NVML down.
func (m *Monitor) Close() error {
	m.stop()
	m.wg.Wait()
	m.hub.Close()
	return m.gpus.Close()
}

// latest is the newest recorded sample.
func (m *Monitor) latest() (*sample, bool) {
	e, ok := m.ring.Latest()
	return e.Value, ok
}

// current is the newest recorded sample, or, before the first one is
// recorded, a fresh one (whose CPU figures then cover the time since boot).
func (m *Monitor) current(ctx context.Context) *sample {
	if s, ok := m.latest(); ok {
		return s
	}
	snap := m.collector.NewStream().Next(ctx)
	return &sample{snap: snap, usage: usageProto(snap)}
}

// MetricsSource is what /metrics reports.
func (m *Monitor) MetricsSource() metrics.Source {
	return metrics.Source{
		Latest: func() (telemetry.Snapshot, bool) {
			s, ok := m.latest()
			if !ok {
				return telemetry.Snapshot{}, false
			}
			return s.snap, true
		},
		Stats:    m.hub.Stats,
		Hostname: m.hostname,
	}
}

package server

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/genailab/genailab/pkg/imagereq"
	"github.com/genailab/genailab/pkg/metricsserver"
	"github.com/genailab/genailab/services/diffusion/internal/engine"
)

// metrics are the diffusion service's Prometheus series, recorded on the one generation
// path of the gRPC API and the seed wrapper (Service.generate): images by model, size and
// outcome, the engine's time per image and its time per sampling step (from the engine's
// progress). Sizes are bounded by validation (multiples of 64 up to imagereq's maximum);
// models are the store's.
type metrics struct {
	images *prometheus.CounterVec
	engine *prometheus.HistogramVec
	step   *prometheus.HistogramVec
}

var (
	imageBuckets = []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600}
	stepBuckets  = []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}
)

func newMetrics() *metrics {
	return &metrics{
		images: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "genailab_diffusion_images_total",
			Help: "Image generations ended (after validation), by model, size (WxH) and outcome (ok, cancelled, error)."}, []string{"model", "size", "outcome"}),
		engine: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "genailab_diffusion_engine_seconds",
			Help: "Time the engine took for a successful image, model load and decode included.", Buckets: imageBuckets}, []string{"model", "size"}),
		step: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "genailab_diffusion_step_seconds",
			Help: "Time of one sampling step, between the engine's step reports.", Buckets: stepBuckets}, []string{"model", "size"}),
	}
}

// observe wraps sink to time the sampling steps; done records the generation's end.
func (m *metrics) observe(model string, p imagereq.Params, sink engine.ProgressFunc) (engine.ProgressFunc, func(engine.Result, error)) {
	size := strconv.Itoa(p.Width) + "x" + strconv.Itoa(p.Height)
	start := time.Now()
	var mu sync.Mutex
	lastStep, lastAt := 0, time.Time{}
	wrapped := func(pr engine.Progress) {
		mu.Lock()
		if pr.Step > lastStep { // steps are counted while sampling only
			now := time.Now()
			if !lastAt.IsZero() && lastStep > 0 {
				per := now.Sub(lastAt).Seconds() / float64(pr.Step-lastStep)
				for range pr.Step - lastStep {
					m.step.WithLabelValues(model, size).Observe(per)
				}
			}
			lastStep, lastAt = pr.Step, now
		}
		mu.Unlock()
		if sink != nil {
			sink(pr)
		}
	}
	done := func(res engine.Result, err error) {
		m.images.WithLabelValues(model, size, imageOutcome(err)).Inc()
		if err == nil {
			took := res.TimeTaken
			if took <= 0 {
				took = time.Since(start)
			}
			m.engine.WithLabelValues(model, size).Observe(took.Seconds())
		}
	}
	return wrapped, done
}

func imageOutcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	}
	return "error"
}

var (
	engineBusy   = prometheus.NewDesc("genailab_diffusion_engine_busy", "1 while the engine makes an image, else 0.", nil, nil)
	engineLoaded = prometheus.NewDesc("genailab_diffusion_engine_model_info", "1 for the model the engine is configured with (demo: the stand-in).", []string{"model", "demo"}, nil)
)

// metricsCollectors are the service's collectors.
func (s *Service) metricsCollectors() []prometheus.Collector {
	return []prometheus.Collector{s.metrics.images, s.metrics.engine, s.metrics.step,
		metricsserver.Sources(s.log, metricsserver.Source{Name: "engine", Collect: func(ch chan<- prometheus.Metric) error {
			in := s.eng.Info()
			busy := 0.0
			if in.Busy {
				busy = 1
			}
			ch <- prometheus.MustNewConstMetric(engineBusy, prometheus.GaugeValue, busy)
			if in.ModelID != "" {
				ch <- prometheus.MustNewConstMetric(engineLoaded, prometheus.GaugeValue, 1, in.ModelID, strconv.FormatBool(in.Demo))
			}
			return nil
		}}),
	}
}

// startMetrics serves the service's metrics on opts.Metrics (nil server when off).
func startMetrics(s *Service, opts Options) (stop func(), err error) {
	o := opts.Metrics
	if !o.Enabled() {
		return func() {}, nil
	}
	reg, err := metricsserver.NewRegistry(s.metricsCollectors()...)
	if err != nil {
		return nil, err
	}
	o.Logger = opts.Logger
	srv, err := metricsserver.Start(reg, o)
	if err != nil {
		return nil, err
	}
	return srv.Stop, nil
}

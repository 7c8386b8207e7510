package service

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	"github.com/genailab/genailab/pkg/metricsserver"
	"github.com/genailab/genailab/pkg/supervisor"
)

// Metrics of the LLM service, recorded where chats and engine events already pass:
// chats by model and outcome with their tokens, time to first token, wait and duration;
// llama-server's crashes and automatic restarts; and, at each scrape, llama-server's own
// /metrics (it runs with --metrics) re-exported with host and model labels. Labels are
// bounded: model ids of the store, outcomes, the host name.

// engineScrapeTimeout bounds the read of llama-server's /metrics during a scrape.
const engineScrapeTimeout = 2 * time.Second

var (
	latencyBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}
)

type metrics struct {
	requests *prometheus.CounterVec
	tokens   *prometheus.CounterVec
	ttft     *prometheus.HistogramVec
	duration *prometheus.HistogramVec
	wait     *prometheus.HistogramVec
	crashes  prometheus.Counter
	restarts prometheus.Counter
}

func newMetrics() *metrics {
	return &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "genailab_llm_chat_requests_total",
			Help: "Chat requests ended, by model and outcome (ok, invalid, cancelled, unavailable, error)."}, []string{"model", "outcome"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "genailab_llm_chat_tokens_total",
			Help: "Tokens of completed chats, by model and kind (prompt, completion)."}, []string{"model", "kind"}),
		ttft: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "genailab_llm_chat_time_to_first_token_seconds",
			Help: "Time from sending a chat to llama-server to its first token (millisecond resolution).", Buckets: latencyBuckets}, []string{"model"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "genailab_llm_chat_duration_seconds",
			Help: "Time of a whole chat call, the wait for the server included, by outcome.", Buckets: latencyBuckets}, []string{"model", "outcome"}),
		wait: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "genailab_llm_chat_wait_seconds",
			Help: "Time an admitted chat waited for an offloaded, starting or restarting server.", Buckets: latencyBuckets}, []string{"model"}),
		crashes: prometheus.NewCounter(prometheus.CounterOpts{Name: "genailab_llm_engine_crashes_total",
			Help: "Crashes of llama-server (exits nobody asked for)."}),
		restarts: prometheus.NewCounter(prometheus.CounterOpts{Name: "genailab_llm_engine_restarts_total",
			Help: "Automatic restarts of llama-server after a crash."}),
	}
}

// chatEnded records one chat call: err is the status the caller got, done the
// statistics of a completed one (nil otherwise), waited its wait for the server.
func (m *metrics) chatEnded(model string, waited, took time.Duration, done *llmv1.ChatDone, err error) {
	outcome := chatOutcome(err)
	m.requests.WithLabelValues(model, outcome).Inc()
	m.duration.WithLabelValues(model, outcome).Observe(took.Seconds())
	if done == nil {
		return
	}
	m.wait.WithLabelValues(model).Observe(waited.Seconds())
	m.ttft.WithLabelValues(model).Observe(float64(done.GetTimeToFirstTokenMs()) / 1000)
	m.tokens.WithLabelValues(model, "prompt").Add(float64(done.GetPromptTokens()))
	m.tokens.WithLabelValues(model, "completion").Add(float64(done.GetCompletionTokens()))
}

func chatOutcome(err error) string {
	switch status.Code(err) {
	case codes.OK:
		return "ok"
	case codes.InvalidArgument:
		return "invalid"
	case codes.Canceled:
		return "cancelled"
	case codes.Unavailable, codes.DeadlineExceeded, codes.FailedPrecondition, codes.Aborted:
		return "unavailable"
	}
	return "error"
}

// followEngine counts crashes and automatic restarts until the supervisor ends.
func (s *Service) followEngine() {
	cur := s.sup.Events(0)
	for {
		e, err := cur.Next(context.Background())
		if err != nil {
			return
		}
		switch e.Value.Kind {
		case supervisor.EventCrashed:
			s.metrics.crashes.Inc()
		case supervisor.EventRestarted:
			s.metrics.restarts.Inc()
		}
	}
}

// modelID is the model of the current or last llama-server ("" before the first start).
func (s *Service) modelID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		return ""
	}
	return s.cur.cfg.GetModelId()
}

// MetricsCollectors are the service's collectors; host labels llama-server's series.
func (s *Service) MetricsCollectors(host string) []prometheus.Collector {
	m := s.metrics
	return []prometheus.Collector{
		m.requests, m.tokens, m.ttft, m.duration, m.wait, m.crashes, m.restarts,
		metricsserver.Sources(s.log, metricsserver.Source{Name: "engine", Collect: s.collectEngine},
			metricsserver.Source{Name: "llama-server", Collect: func(ch chan<- prometheus.Metric) error { return s.collectLlama(ch, host) }}),
	}
}

var engineUp = prometheus.NewDesc("genailab_llm_engine_up", "1 when llama-server runs and is healthy, 0 otherwise (stopped, offloaded, starting, crashed).", []string{"model"}, nil)
var engineOffloaded = prometheus.NewDesc("genailab_llm_engine_offloaded", "1 while llama-server is stopped for an image (chats wait), else 0.", nil, nil)

func (s *Service) collectEngine(ch chan<- prometheus.Metric) error {
	s.mu.Lock()
	off := s.offloaded
	s.mu.Unlock()
	snap := s.sup.Snapshot()
	up := 0.0
	if snap.State == supervisor.StateRunning && snap.Health == supervisor.HealthOK {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(engineUp, prometheus.GaugeValue, up, s.modelID())
	offv := 0.0
	if off {
		offv = 1
	}
	ch <- prometheus.MustNewConstMetric(engineOffloaded, prometheus.GaugeValue, offv)
	return nil
}

// collectLlama reads llama-server's /metrics and sends its series with host and model
// labels added. Without a running llama-server there is nothing to read (no error).
func (s *Service) collectLlama(ch chan<- prometheus.Metric, host string) error {
	s.mu.Lock()
	cur := s.cur
	s.mu.Unlock()
	snap := s.sup.Snapshot()
	if cur == nil || snap.State != supervisor.StateRunning || snap.Port == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), engineScrapeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL(cur.cfg.GetHost(), snap.Port)+"/metrics", nil)
	if err != nil {
		return err
	}
	if s.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+s.apiKey)
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return fmt.Errorf("read llama-server /metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("read llama-server /metrics: %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return fmt.Errorf("parse llama-server /metrics: %w", err)
	}
	return relabel(ch, fams, []string{"host", "model"}, []string{host, cur.cfg.GetModelId()})
}

// relabel sends the counters, gauges and untyped series of fams with extra labels.
func relabel(ch chan<- prometheus.Metric, fams map[string]*dto.MetricFamily, names, values []string) error {
	for name, f := range fams {
		var typ prometheus.ValueType
		switch f.GetType() {
		case dto.MetricType_COUNTER:
			typ = prometheus.CounterValue
		case dto.MetricType_GAUGE:
			typ = prometheus.GaugeValue
		case dto.MetricType_UNTYPED:
			typ = prometheus.UntypedValue
		default:
			continue // llama-server exports none
		}
		for _, m := range f.GetMetric() {
			ln, lv := append([]string{}, names...), append([]string{}, values...)
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "host" || lp.GetName() == "model" {
					continue
				}
				ln, lv = append(ln, lp.GetName()), append(lv, lp.GetValue())
			}
			var v float64
			switch typ {
			case prometheus.CounterValue:
				v = m.GetCounter().GetValue()
			case prometheus.GaugeValue:
				v = m.GetGauge().GetValue()
			default:
				v = m.GetUntyped().GetValue()
			}
			desc := prometheus.NewDesc(name, strings.TrimSpace(f.GetHelp()), ln, nil)
			cm, err := prometheus.NewConstMetric(desc, typ, v, lv...)
			if err != nil {
				return fmt.Errorf("re-export %s: %w", name, err)
			}
			ch <- cm
		}
	}
	return nil
}

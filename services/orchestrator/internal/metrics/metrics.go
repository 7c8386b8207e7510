// Package metrics is the orchestrator's Prometheus instrumentation. Nearly everything is
// derived from the event log, where the orchestrator already records what it does
// (Observe is the log's observer): jobs by outcome and their wait in the queue, offload
// and reload durations, the LLM's down time per offload, placement decisions by reason,
// failovers and engine crashes. The queue depth and the hosts' states are read at each
// scrape. Labels are bounded: host names (the configured or discovered hosts), outcomes,
// reasons and states; never a job id.
package metrics

import (
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/pkg/metricsserver"
)

// Buckets of the durations, in seconds: images and reloads take from a fraction of a
// second (tiny models) to minutes.
var (
	durationBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}
	waitBuckets     = []float64{0.001, 0.01, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}
	// stageBuckets start below a millisecond: the stages around the engine take a few
	// (a database commit, loopback round trips, a file's fsync).
	stageBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}
)

// imageStages are the stage label's values, each with the event value that times it:
// the job's record stored at submit (JOB_QUEUED), a host's facts gathered for its offload
// decision (the cycle's JOB_PLACED), the diffusion service's stream from its opening to
// the image received, and the image's durable write to the gallery (JOB_FINISHED).
var imageStages = []struct{ stage, value string }{
	{"record", "record_ms"}, {"placement", "gather_ms"}, {"generation", "generation_ms"}, {"store", "store_ms"},
}

// maxPending bounds the jobs and hosts whose start times are remembered (a lost
// terminal event must not grow the maps without bound).
const maxPending = 10000

// Sources are what a scrape reads; nil functions are left out.
type Sources struct {
	// QueueDepth is the number of images waiting.
	QueueDepth func() int
	// QueueCapacity is how many may wait.
	QueueCapacity func() int
	// Hosts lists the hosts with their state.
	Hosts func() []*orchestratorv1.Host
}

// Metrics holds the orchestrator's series. Create it with New, register Collectors on a
// registry, and hand Observe to the event log.
type Metrics struct {
	src Sources
	log *slog.Logger

	jobs         *prometheus.CounterVec
	jobDuration  *prometheus.HistogramVec
	queueWait    prometheus.Histogram
	stage        *prometheus.HistogramVec
	offload      *prometheus.HistogramVec
	reload       *prometheus.HistogramVec
	reloadFailed *prometheus.CounterVec
	down         *prometheus.HistogramVec
	offloaded    *prometheus.GaugeVec
	placement    *prometheus.CounterVec
	replaced     *prometheus.CounterVec
	crashes      *prometheus.CounterVec

	mu          sync.Mutex
	queuedAt    map[string]time.Time // job id → JOB_QUEUED
	startedAt   map[string]time.Time // job id → JOB_STARTED
	offloadedAt map[string]time.Time // host → OFFLOAD_STARTED
}

// New returns the orchestrator's metrics.
func New(src Sources, log *slog.Logger) *Metrics {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Metrics{
		src: src, log: log,
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "genailab_orchestrator_jobs_total",
			Help: "Image jobs ended, by outcome (succeeded, failed, cancelled)."}, []string{"outcome"}),
		jobDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "genailab_orchestrator_job_duration_seconds",
			Help: "Time from a job's start (out of the queue) to its end, offload and generation included, by outcome.", Buckets: durationBuckets}, []string{"outcome"}),
		queueWait: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "genailab_orchestrator_queue_wait_seconds",
			Help: "Time an image waited in the queue before it started.", Buckets: waitBuckets}),
		stage: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "genailab_orchestrator_image_stage_seconds",
			Help: "Time an image spends in each stage of its path through the orchestrator: record (its job stored at submit), placement (the host's facts gathered for the offload decision), generation (the diffusion service's stream, from its opening to the image received), store (the image written durably to the gallery).", Buckets: stageBuckets}, []string{"stage"}),
		offload: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "genailab_orchestrator_offload_duration_seconds",
			Help: "Time to offload the LLM for an image: drain, stop, and the monitor confirming the memory freed.", Buckets: durationBuckets}, []string{"host"}),
		reload: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "genailab_orchestrator_reload_duration_seconds",
			Help: "Time to reload the LLM after an image until it is healthy, every attempt included.", Buckets: durationBuckets}, []string{"host"}),
		reloadFailed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "genailab_orchestrator_reload_failures_total",
			Help: "Failed LLM reload attempts."}, []string{"host"}),
		down: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "genailab_orchestrator_llm_down_seconds",
			Help: "Time the LLM was away for one offload: from the offload's start to the end of its reload.", Buckets: durationBuckets}, []string{"host"}),
		offloaded: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "genailab_orchestrator_llm_offloaded",
			Help: "1 while the host's LLM is offloaded for an image (from the offload's start to the end of its reload), else 0."}, []string{"host"}),
		placement: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "genailab_orchestrator_placement_decisions_total",
			Help: "Offload decisions for images placed on a host, by reason: fits (no offload), offload, offload_insufficient (offloaded though even then it may not fit), undecided (the numbers could not be gathered; no offload)."},
			[]string{"host", "reason"}),
		replaced: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "genailab_orchestrator_replacements_total",
			Help: "Images placed again after a host could not finish them, by reason: failover (the host became unreachable), busy (its engine could not take the image then)."},
			[]string{"reason"}),
		crashes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "genailab_orchestrator_engine_crashes_total",
			Help: "Engine crashes the hosts reported, by engine (llm, diffusion)."}, []string{"host", "engine"}),
		queuedAt: map[string]time.Time{}, startedAt: map[string]time.Time{}, offloadedAt: map[string]time.Time{},
	}
	// The label values known in advance start at 0, so that a rate over them has data
	// before the first such event.
	for _, o := range []string{"succeeded", "failed", "cancelled"} {
		m.jobs.WithLabelValues(o)
	}
	for _, r := range []string{"failover", "busy"} {
		m.replaced.WithLabelValues(r)
	}
	for _, s := range imageStages {
		m.stage.WithLabelValues(s.stage)
	}
	return m
}

// Collectors are the collectors to register.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{
		m.jobs, m.jobDuration, m.queueWait, m.stage, m.offload, m.reload, m.reloadFailed, m.down, m.offloaded,
		m.placement, m.replaced, m.crashes,
		metricsserver.Sources(m.log, metricsserver.Source{Name: "queue", Collect: m.collectQueue}, metricsserver.Source{Name: "hosts", Collect: m.collectHosts}),
	}
}

var (
	queueDepth    = prometheus.NewDesc("genailab_orchestrator_queue_depth", "Images waiting in the queue.", nil, nil)
	queueCapacity = prometheus.NewDesc("genailab_orchestrator_queue_capacity", "Images that may wait in the queue; more are refused.", nil, nil)
	hostState     = prometheus.NewDesc("genailab_orchestrator_host_state", "1 for the host's current state (ready, unreachable, draining), 0 for the others.", []string{"host", "state"}, nil)
	hostRunning   = prometheus.NewDesc("genailab_orchestrator_host_running_jobs", "Images the host runs now.", []string{"host"}, nil)
	hostLLM       = prometheus.NewDesc("genailab_orchestrator_host_llm_running", "1 when the host's LLM is running, 0 when it is stopped or offloaded.", []string{"host"}, nil)
)

func (m *Metrics) collectQueue(ch chan<- prometheus.Metric) error {
	if m.src.QueueDepth != nil {
		ch <- prometheus.MustNewConstMetric(queueDepth, prometheus.GaugeValue, float64(m.src.QueueDepth()))
	}
	if m.src.QueueCapacity != nil {
		ch <- prometheus.MustNewConstMetric(queueCapacity, prometheus.GaugeValue, float64(m.src.QueueCapacity()))
	}
	return nil
}

// hostStates are the states reported, in their label spelling.
var hostStates = map[orchestratorv1.HostState]string{
	orchestratorv1.HostState_HOST_STATE_READY:       "ready",
	orchestratorv1.HostState_HOST_STATE_UNREACHABLE: "unreachable",
	orchestratorv1.HostState_HOST_STATE_DRAINING:    "draining",
}

func (m *Metrics) collectHosts(ch chan<- prometheus.Metric) error {
	if m.src.Hosts == nil {
		return nil
	}
	for _, h := range m.src.Hosts() {
		name := hostName(h.GetName())
		for st, label := range hostStates {
			v := 0.0
			if h.GetState() == st {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(hostState, prometheus.GaugeValue, v, name, label)
		}
		ch <- prometheus.MustNewConstMetric(hostRunning, prometheus.GaugeValue, float64(h.GetRunningJobs()), name)
		llm := 0.0
		if h.GetLlmRunning() {
			llm = 1
		}
		ch <- prometheus.MustNewConstMetric(hostLLM, prometheus.GaugeValue, llm, name)
	}
	return nil
}

// hostName is the host label: the local host (named "") is "local", as ListHosts says.
func hostName(h string) string {
	if h == "" {
		return "local"
	}
	return h
}

// Observe records an event of the log. It is called with the log's lock held, in the
// order of the events: it only updates counters.
func (m *Metrics) Observe(ev *orchestratorv1.Event) {
	host, job, v := hostName(ev.GetHost()), ev.GetJobId(), ev.GetValues()
	at := time.Now()
	if ev.GetTime() != nil {
		at = ev.GetTime().AsTime()
	}
	m.observeStages(ev.GetType(), v)
	m.mu.Lock()
	defer m.mu.Unlock()
	switch ev.GetType() {
	case orchestratorv1.EventType_EVENT_TYPE_JOB_QUEUED:
		remember(m.queuedAt, job, at)
	case orchestratorv1.EventType_EVENT_TYPE_JOB_STARTED:
		if q, ok := m.queuedAt[job]; ok {
			m.queueWait.Observe(at.Sub(q).Seconds())
			delete(m.queuedAt, job)
		}
		remember(m.startedAt, job, at)
	case orchestratorv1.EventType_EVENT_TYPE_JOB_FINISHED:
		m.jobEnded(job, "succeeded", at)
	case orchestratorv1.EventType_EVENT_TYPE_JOB_CANCELLED:
		m.jobEnded(job, "cancelled", at)
	case orchestratorv1.EventType_EVENT_TYPE_JOB_FAILED:
		switch {
		case v["retrying"] == 1 && v["busy"] == 1:
			m.replaced.WithLabelValues("busy").Inc()
		case v["retrying"] == 1:
			m.replaced.WithLabelValues("failover").Inc()
		default:
			m.jobEnded(job, "failed", at)
		}
	case orchestratorv1.EventType_EVENT_TYPE_JOB_PLACED:
		if _, dispatcher := v["hosts_considered"]; !dispatcher {
			m.placement.WithLabelValues(host, placementReason(v)).Inc()
		}
	case orchestratorv1.EventType_EVENT_TYPE_OFFLOAD_STARTED:
		remember(m.offloadedAt, host, at)
		m.offloaded.WithLabelValues(host).Set(1)
	case orchestratorv1.EventType_EVENT_TYPE_OFFLOAD_FINISHED:
		if d, ok := v["duration_ms"]; ok {
			m.offload.WithLabelValues(host).Observe(d / 1000)
		}
	case orchestratorv1.EventType_EVENT_TYPE_RELOAD_FINISHED:
		if d, ok := v["duration_ms"]; ok {
			m.reload.WithLabelValues(host).Observe(d / 1000)
		}
		if o, ok := m.offloadedAt[host]; ok {
			m.down.WithLabelValues(host).Observe(at.Sub(o).Seconds())
			delete(m.offloadedAt, host)
		}
		m.offloaded.WithLabelValues(host).Set(0)
	case orchestratorv1.EventType_EVENT_TYPE_RELOAD_FAILED:
		m.reloadFailed.WithLabelValues(host).Inc()
	case orchestratorv1.EventType_EVENT_TYPE_LLM_CRASHED:
		m.crashes.WithLabelValues(host, "llm").Inc()
	case orchestratorv1.EventType_EVENT_TYPE_DIFFUSION_CRASHED:
		m.crashes.WithLabelValues(host, "diffusion").Inc()
	}
}

// observeStages records the stage durations an event carries: record_ms of JOB_QUEUED,
// gather_ms of a host's JOB_PLACED (not the dispatcher's, which has hosts_considered),
// generation_ms and store_ms of JOB_FINISHED.
func (m *Metrics) observeStages(typ orchestratorv1.EventType, v map[string]float64) {
	switch typ {
	case orchestratorv1.EventType_EVENT_TYPE_JOB_QUEUED, orchestratorv1.EventType_EVENT_TYPE_JOB_FINISHED:
	case orchestratorv1.EventType_EVENT_TYPE_JOB_PLACED:
		if _, dispatcher := v["hosts_considered"]; dispatcher {
			return
		}
	default:
		return
	}
	for _, s := range imageStages {
		if d, ok := v[s.value]; ok {
			m.stage.WithLabelValues(s.stage).Observe(d / 1000)
		}
	}
}

func (m *Metrics) jobEnded(job, outcome string, at time.Time) {
	m.jobs.WithLabelValues(outcome).Inc()
	if s, ok := m.startedAt[job]; ok {
		m.jobDuration.WithLabelValues(outcome).Observe(at.Sub(s).Seconds())
		delete(m.startedAt, job)
	}
	delete(m.queuedAt, job) // cancelled while queued
}

// placementReason is the reason of a cycle's JOB_PLACED event, from its values (those of
// decide.Decision.Values; only gather_ms when the decision could not be made).
func placementReason(v map[string]float64) string {
	_, decided := v["needs_offload"]
	switch {
	case !decided:
		return "undecided"
	case v["needs_offload"] == 1 && v["fits"] == 0:
		return "offload_insufficient"
	case v["needs_offload"] == 1:
		return "offload"
	}
	return "fits"
}

func remember(m map[string]time.Time, key string, at time.Time) {
	if key == "" || len(m) >= maxPending && !hasKey(m, key) {
		return
	}
	m[key] = at
}

func hasKey(m map[string]time.Time, key string) bool { _, ok := m[key]; return ok }

package metrics_test

import (
	"log/slog"
	"math"
	"net/http/httptest"
	"path/filepath"
	"testing"

	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/pkg/metricsserver"
	"github.com/genailab/genailab/pkg/metricsserver/metricstest"
	"github.com/genailab/genailab/services/orchestrator/internal/events"
	"github.com/genailab/genailab/services/orchestrator/internal/metrics"
	"github.com/genailab/genailab/services/orchestrator/internal/state"
)

// The events of a real log (one offloaded image, one cancelled while queued, one failover,
// a busy retry, a reload failure, an engine crash) become the series of the exposition,
// whose shape is the golden file's.
func TestEventsBecomeSeries(t *testing.T) {
	db, err := state.Open(filepath.Join(t.TempDir(), "state.db"), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ev := events.New(db, slog.New(slog.DiscardHandler))
	m := metrics.New(metrics.Sources{
		QueueDepth: func() int { return 3 }, QueueCapacity: func() int { return 8 },
		Hosts: func() []*orchestratorv1.Host {
			return []*orchestratorv1.Host{
				{Name: "", State: orchestratorv1.HostState_HOST_STATE_READY, RunningJobs: 1, LlmRunning: true},
				{Name: "gpu2", State: orchestratorv1.HostState_HOST_STATE_UNREACHABLE},
			}
		},
	}, nil)
	ev.Observe(m.Observe)
	reg, err := metricsserver.NewRegistry(m.Collectors()...)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(metricsserver.Handler(reg))
	defer srv.Close()

	type E = orchestratorv1.EventType
	emit := func(typ E, host, job string, v map[string]float64) { ev.Emit(typ, host, job, "", v) }
	emit(orchestratorv1.EventType_EVENT_TYPE_JOB_QUEUED, "", "j1", map[string]float64{"queue_length": 1, "record_ms": 2})
	emit(orchestratorv1.EventType_EVENT_TYPE_JOB_QUEUED, "", "j2", nil)
	emit(orchestratorv1.EventType_EVENT_TYPE_JOB_STARTED, "", "j1", nil)
	emit(orchestratorv1.EventType_EVENT_TYPE_JOB_PLACED, "", "j1", map[string]float64{"attempt": 1, "hosts_considered": 2, "needs_offload": 1, "gather_ms": 99})
	emit(orchestratorv1.EventType_EVENT_TYPE_JOB_PLACED, "", "j1", map[string]float64{"required_bytes": 1, "needs_offload": 1, "fits": 1, "gather_ms": 3})
	emit(orchestratorv1.EventType_EVENT_TYPE_OFFLOAD_STARTED, "", "j1", nil)
	emit(orchestratorv1.EventType_EVENT_TYPE_OFFLOAD_FINISHED, "", "j1", map[string]float64{"duration_ms": 1500})
	emit(orchestratorv1.EventType_EVENT_TYPE_RELOAD_STARTED, "", "j1", nil)
	emit(orchestratorv1.EventType_EVENT_TYPE_RELOAD_FAILED, "", "j1", map[string]float64{"attempt": 1})
	emit(orchestratorv1.EventType_EVENT_TYPE_JOB_FINISHED, "", "j1", map[string]float64{"generation_ms": 50, "store_ms": 1.5})
	emit(orchestratorv1.EventType_EVENT_TYPE_RELOAD_FINISHED, "", "j1", map[string]float64{"duration_ms": 700})
	emit(orchestratorv1.EventType_EVENT_TYPE_JOB_CANCELLED, "", "j2", nil)
	emit(orchestratorv1.EventType_EVENT_TYPE_JOB_FAILED, "gpu2", "j3", map[string]float64{"attempt": 1, "retrying": 1})
	emit(orchestratorv1.EventType_EVENT_TYPE_JOB_FAILED, "gpu2", "j3", map[string]float64{"attempt": 1, "retrying": 1, "busy": 1})
	emit(orchestratorv1.EventType_EVENT_TYPE_JOB_PLACED, "gpu2", "j3", map[string]float64{"gather_ms": 4}) // undecided
	emit(orchestratorv1.EventType_EVENT_TYPE_JOB_FAILED, "gpu2", "j3", nil)
	emit(orchestratorv1.EventType_EVENT_TYPE_LLM_CRASHED, "gpu2", "", nil)

	fams := metricstest.Golden(t, srv.URL, filepath.Join("testdata", "metrics.golden"))
	local := map[string]string{"host": "local"}
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"genailab_orchestrator_jobs_total", map[string]string{"outcome": "succeeded"}, 1},
		{"genailab_orchestrator_jobs_total", map[string]string{"outcome": "cancelled"}, 1},
		{"genailab_orchestrator_jobs_total", map[string]string{"outcome": "failed"}, 1},
		{"genailab_orchestrator_job_duration_seconds", map[string]string{"outcome": "succeeded"}, 1}, // one observation
		{"genailab_orchestrator_queue_wait_seconds", nil, 1},
		{"genailab_orchestrator_offload_duration_seconds", local, 1},
		{"genailab_orchestrator_reload_duration_seconds", local, 1},
		{"genailab_orchestrator_llm_down_seconds", local, 1},
		{"genailab_orchestrator_llm_offloaded", local, 0},
		{"genailab_orchestrator_reload_failures_total", local, 1},
		{"genailab_orchestrator_placement_decisions_total", map[string]string{"host": "local", "reason": "offload"}, 1},
		{"genailab_orchestrator_placement_decisions_total", map[string]string{"host": "gpu2", "reason": "undecided"}, 1},
		{"genailab_orchestrator_replacements_total", map[string]string{"reason": "failover"}, 1},
		{"genailab_orchestrator_replacements_total", map[string]string{"reason": "busy"}, 1},
		{"genailab_orchestrator_engine_crashes_total", map[string]string{"host": "gpu2", "engine": "llm"}, 1},
		{"genailab_orchestrator_queue_depth", nil, 3},
		{"genailab_orchestrator_queue_capacity", nil, 8},
		{"genailab_orchestrator_host_state", map[string]string{"host": "local", "state": "ready"}, 1},
		{"genailab_orchestrator_host_state", map[string]string{"host": "gpu2", "state": "ready"}, 0},
		{"genailab_orchestrator_host_state", map[string]string{"host": "gpu2", "state": "unreachable"}, 1},
		{"genailab_orchestrator_host_running_jobs", local, 1},
		{"genailab_orchestrator_host_llm_running", local, 1},
		{"genailab_scrape_collector_success", map[string]string{"collector": "hosts"}, 1},
		{"genailab_scrape_collector_success", map[string]string{"collector": "queue"}, 1},
	}
	for _, c := range checks {
		if got := metricstest.Value(t, fams, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// The stages: the dispatcher's placement is not a host's gathering.
	for stage, want := range map[string][2]float64{"record": {1, 0.002}, "placement": {2, 0.007}, "generation": {1, 0.05}, "store": {1, 0.0015}} {
		h := metricstest.Histogram(t, fams, "genailab_orchestrator_image_stage_seconds", map[string]string{"stage": stage})
		if got := [2]float64{float64(h.GetSampleCount()), h.GetSampleSum()}; math.Abs(got[0]-want[0]) > 0 || math.Abs(got[1]-want[1]) > 1e-9 {
			t.Errorf("stage %s: count, sum %v, want %v", stage, got, want)
		}
	}
	// The offload took 1.5 s (the event's own figure).
	if s := fams["genailab_orchestrator_offload_duration_seconds"].GetMetric()[0].GetHistogram().GetSampleSum(); s != 1.5 {
		t.Errorf("offload duration sum %v, want 1.5", s)
	}
}

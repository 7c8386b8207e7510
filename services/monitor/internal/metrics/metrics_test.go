package metrics

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/genailab/genailab/pkg/metricsserver/metricstest"
	"github.com/genailab/genailab/services/monitor/internal/gpu"
	"github.com/genailab/genailab/services/monitor/internal/sampler"
	"github.com/genailab/genailab/services/monitor/internal/telemetry"
)

// scrape fetches url over HTTP and parses it with Prometheus' text parser.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// value returns the value of the series of family name whose labels
// include want, failing if there is not exactly one.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		t.Fatalf("no family %s", name)
	}
	var found []*dto.Metric
	for _, m := range f.Metric {
		match := 0
		for _, lp := range m.Label {
			if v, ok := want[lp.GetName()]; ok && v == lp.GetValue() {
				match++
			}
		}
		if match == len(want) {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s%v: %d series", name, want, len(found))
	}
	m := found[0]
	switch {
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Counter != nil:
		return m.Counter.GetValue()
	}
	t.Fatalf("%s: neither gauge nor counter", name)
	return 0
}

func testSnapshot() telemetry.Snapshot {
	return telemetry.Snapshot{
		Time:   time.Unix(1_800_000_000, 0),
		CPU:    telemetry.CPUUsage{Percent: 37.5},
		Memory: telemetry.Memory{Total: 64 << 30, Available: 40 << 30, Used: 20 << 30},
		Swap:   telemetry.Swap{Total: 8 << 30, Used: 1 << 30},
		Disk:   telemetry.Disk{Path: "/data", Total: 1 << 40, Free: 300 << 30},
		GPUs: []gpu.Device{
			{
				Index: 0, UUID: "GPU-0000", Name: "NVIDIA A100-SXM4-40GB",
				MemoryTotal: 40960 << 20, MemoryUsed: 10240 << 20, MemoryFree: 30720 << 20,
				HasUtilization: true, UtilizationGPU: 93, UtilizationMemory: 41,
				HasTemperature: true, TemperatureC: 67,
				HasPower: true, PowerDrawMilliwatts: 287_250,
				HasPowerLimit: true, PowerLimitMilliwatts: 400_000,
				ManagedMemory: 8 << 30, ForeignMemory: 2 << 30,
				// 1 GiB of the managed memory is not attributed to a process: "other".
				Processes: []gpu.Process{
					{PID: 4242, Name: "llama-server", UsedMemory: 6 << 30, MemoryKnown: true, Managed: true},
					{PID: 4300, Name: "sd-cli", UsedMemory: 1 << 30, MemoryKnown: true, Managed: true},
					{PID: 7, Name: "Xorg", UsedMemory: 1 << 30, MemoryKnown: true},
				},
			},
			{ // a board without utilisation, temperature or power support
				Index: 1, UUID: "GPU-1111", Name: "NVIDIA A100-SXM4-40GB",
				MemoryTotal: 40960 << 20, MemoryFree: 40960 << 20,
			},
		},
		Managed: []telemetry.ManagedProcess{
			{PID: 4242, Name: "llama-server", Role: "llm", RSS: 900 << 20, CPUPercent: 180, GPUMemory: 8 << 30},
			{PID: 4300, Name: "sd-cli", Role: "diffusion", RSS: 100 << 20, GPUMemory: 1 << 30},
			{PID: 4301, Name: "sd-cli", Role: "diffusion", RSS: 200 << 20},
		},
	}
}

func TestMetricsScrapedAndParsed(t *testing.T) {
	src := Source{
		Latest:   func() (telemetry.Snapshot, bool) { return testSnapshot(), true },
		Stats:    func() sampler.Stats { return sampler.Stats{Samplers: 2, Subscribers: 5, Missed: 17} },
		Hostname: "dgx-1",
	}
	reg, err := NewRegistry(src)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(Handler(reg))
	defer srv.Close()
	fams := metricstest.Golden(t, srv.URL, filepath.Join("testdata", "metrics.golden"))

	g0 := map[string]string{"gpu": "0", "UUID": "GPU-0000", "device": "nvidia0", "modelName": "NVIDIA A100-SXM4-40GB", "Hostname": "dgx-1"}
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"DCGM_FI_DEV_FB_USED", g0, 10240},
		{"DCGM_FI_DEV_FB_FREE", g0, 30720},
		{"DCGM_FI_DEV_FB_TOTAL", g0, 40960},
		{"DCGM_FI_DEV_GPU_UTIL", g0, 93},
		{"DCGM_FI_DEV_MEM_COPY_UTIL", g0, 41},
		{"DCGM_FI_DEV_GPU_TEMP", g0, 67},
		{"DCGM_FI_DEV_POWER_USAGE", g0, 287.25},
		{"DCGM_FI_DEV_ENFORCED_POWER_LIMIT", g0, 400},
		{"genailab_gpu_managed_memory_bytes", g0, 8 << 30},
		{"genailab_gpu_foreign_memory_bytes", g0, 2 << 30},
		{"DCGM_FI_DEV_FB_FREE", map[string]string{"gpu": "1", "UUID": "GPU-1111"}, 40960},
		{"genailab_gpu_telemetry_available", nil, 1},
		{"genailab_host_cpu_utilization_percent", nil, 37.5},
		{"genailab_host_memory_total_bytes", nil, 64 << 30},
		{"genailab_host_memory_available_bytes", nil, 40 << 30},
		{"genailab_host_memory_used_bytes", nil, 20 << 30},
		{"genailab_host_swap_total_bytes", nil, 8 << 30},
		{"genailab_host_swap_used_bytes", nil, 1 << 30},
		{"genailab_host_data_disk_free_bytes", map[string]string{"path": "/data"}, 300 << 30},
		{"genailab_host_data_disk_total_bytes", map[string]string{"path": "/data"}, 1 << 40},
		// Summed by name and role: no pid label (unbounded).
		{"genailab_managed_processes", map[string]string{"name": "sd-cli", "role": "diffusion"}, 2},
		{"genailab_managed_process_resident_memory_bytes", map[string]string{"name": "llama-server", "role": "llm"}, 900 << 20},
		{"genailab_managed_process_resident_memory_bytes", map[string]string{"name": "sd-cli", "role": "diffusion"}, 300 << 20},
		{"genailab_managed_process_cpu_percent", map[string]string{"name": "llama-server"}, 180},
		{"genailab_managed_process_gpu_memory_bytes", map[string]string{"name": "llama-server"}, 8 << 30},
		// GPU memory by role, with the GPU's dcgm labels (UUID joins DCGM_FI_DEV_*).
		{"genailab_gpu_memory_by_role_bytes", map[string]string{"UUID": "GPU-0000", "role": "llm"}, 6 << 30},
		{"genailab_gpu_memory_by_role_bytes", map[string]string{"UUID": "GPU-0000", "role": "diffusion"}, 1 << 30},
		{"genailab_gpu_memory_by_role_bytes", map[string]string{"UUID": "GPU-0000", "role": "other"}, 1 << 30},
		{"genailab_gpu_memory_by_role_bytes", map[string]string{"UUID": "GPU-0000", "role": "foreign"}, 2 << 30},
		{"genailab_gpu_memory_by_role_bytes", map[string]string{"UUID": "GPU-1111", "role": "llm"}, 0},
		{"genailab_scrape_collector_success", map[string]string{"collector": "host"}, 1},
		{"genailab_scrape_collector_success", map[string]string{"collector": "gpu"}, 1},
		{"genailab_scrape_collector_success", map[string]string{"collector": "processes"}, 1},
		{"genailab_monitor_watch_subscribers", nil, 5},
		{"genailab_monitor_samplers", nil, 2},
		{"genailab_monitor_watch_missed_snapshots_total", nil, 17},
		{"genailab_monitor_snapshot_timestamp_seconds", nil, 1_800_000_000},
	}
	for _, c := range checks {
		if got := value(t, fams, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if typ := fams["genailab_monitor_watch_missed_snapshots_total"].GetType(); typ != dto.MetricType_COUNTER {
		t.Errorf("missed snapshots type %v, want counter", typ)
	}
	// Unsupported readings are absent, not zero.
	for _, name := range []string{"DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_POWER_USAGE"} {
		if n := len(fams[name].Metric); n != 1 {
			t.Errorf("%s has %d series, want only GPU 0's", name, n)
		}
	}
	if _, ok := fams["go_goroutines"]; !ok {
		t.Error("no Go runtime metrics")
	}
}

func TestMetricsWithoutGPUOrSnapshot(t *testing.T) {
	snap := testSnapshot()
	snap.GPUs, snap.GPUUnavailable, snap.Managed = nil, "NVML not available: no NVML library", nil
	var have atomic.Bool
	reg, err := NewRegistry(Source{Latest: func() (telemetry.Snapshot, bool) { return snap, have.Load() }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(Handler(reg))
	defer srv.Close()

	fams := scrape(t, srv.URL)
	if _, ok := fams["genailab_host_memory_total_bytes"]; ok {
		t.Fatal("host series before any snapshot")
	}
	if v := value(t, fams, "genailab_scrape_collector_success", map[string]string{"collector": "host"}); v != 0 {
		t.Fatalf("host source success = %v before any snapshot, want 0", v)
	}
	have.Store(true)
	fams = scrape(t, srv.URL)
	if v := value(t, fams, "genailab_gpu_telemetry_available", nil); v != 0 {
		t.Fatalf("telemetry available = %v", v)
	}
	if v := value(t, fams, "genailab_scrape_collector_success", map[string]string{"collector": "gpu"}); v != 0 {
		t.Fatalf("gpu source success = %v without NVML, want 0", v)
	}
	for name := range fams {
		if len(name) > 5 && name[:5] == "DCGM_" {
			t.Fatalf("GPU series %s without GPUs", name)
		}
	}
	if v := value(t, fams, "genailab_host_memory_total_bytes", nil); v != 64<<30 {
		t.Fatalf("memory total %v", v)
	}
}

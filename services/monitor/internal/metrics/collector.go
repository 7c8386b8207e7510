package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/genailab/genailab/services/monitor/internal/sampler"
	"github.com/genailab/genailab/services/monitor/internal/telemetry"
)

// Source supplies what a scrape reports: the newest snapshot (false when
// none has been taken yet) and the WatchUsage hub's counters.
type Source struct {
	Latest   func() (telemetry.Snapshot, bool)
	Stats    func() sampler.Stats
	Hostname string
}

const mib = 1 << 20

var gpuLabels = []string{"gpu", "UUID", "device", "modelName", "Hostname"}

// dcgm describes a dcgm-exporter series.
func dcgm(name, help string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, gpuLabels, nil)
}

var (
	fbUsed     = dcgm("DCGM_FI_DEV_FB_USED", "Framebuffer memory used (in MiB).")
	fbFree     = dcgm("DCGM_FI_DEV_FB_FREE", "Framebuffer memory free (in MiB).")
	fbTotal    = dcgm("DCGM_FI_DEV_FB_TOTAL", "Framebuffer memory total (in MiB).")
	gpuUtil    = dcgm("DCGM_FI_DEV_GPU_UTIL", "GPU utilization (in %).")
	memUtil    = dcgm("DCGM_FI_DEV_MEM_COPY_UTIL", "Memory utilization (in %).")
	gpuTemp    = dcgm("DCGM_FI_DEV_GPU_TEMP", "GPU temperature (in C).")
	powerUsage = dcgm("DCGM_FI_DEV_POWER_USAGE", "Power draw (in W).")
	powerLimit = dcgm("DCGM_FI_DEV_ENFORCED_POWER_LIMIT", "Enforced power limit (in W).")

	gpuManaged = prometheus.NewDesc("genailab_gpu_managed_memory_bytes",
		"VRAM used by engine processes this host's services manage.", gpuLabels, nil)
	gpuForeign = prometheus.NewDesc("genailab_gpu_foreign_memory_bytes",
		"VRAM used by everything else (other programs, unlisted processes, driver).", gpuLabels, nil)
	gpuAvailable = prometheus.NewDesc("genailab_gpu_telemetry_available",
		"1 when NVML can be read, 0 when it cannot (no library, driver or GPU).", nil, nil)

	cpuUtil   = prometheus.NewDesc("genailab_host_cpu_utilization_percent", "CPU use over all cores, percent, over the last second.", nil, nil)
	memTotal  = prometheus.NewDesc("genailab_host_memory_total_bytes", "Physical memory.", nil, nil)
	memAvail  = prometheus.NewDesc("genailab_host_memory_available_bytes", "Memory available without swapping.", nil, nil)
	memUsed   = prometheus.NewDesc("genailab_host_memory_used_bytes", "Memory in use.", nil, nil)
	swapTotal = prometheus.NewDesc("genailab_host_swap_total_bytes", "Swap space.", nil, nil)
	swapUsed  = prometheus.NewDesc("genailab_host_swap_used_bytes", "Swap in use.", nil, nil)
	diskTotal = prometheus.NewDesc("genailab_host_data_disk_total_bytes", "Size of the data directory's file system.", []string{"path"}, nil)
	diskFree  = prometheus.NewDesc("genailab_host_data_disk_free_bytes", "Free space on the data directory's file system.", []string{"path"}, nil)

	procLabels = []string{"pid", "name", "role"}
	procRSS    = prometheus.NewDesc("genailab_managed_process_resident_memory_bytes", "Resident memory of a managed engine process.", procLabels, nil)
	procCPU    = prometheus.NewDesc("genailab_managed_process_cpu_percent", "CPU use of a managed engine process (100 = one core).", procLabels, nil)
	procVRAM   = prometheus.NewDesc("genailab_managed_process_gpu_memory_bytes", "VRAM of a managed engine process over all GPUs.", procLabels, nil)

	watchSubs    = prometheus.NewDesc("genailab_monitor_watch_subscribers", "Open WatchUsage streams (and internal subscribers).", nil, nil)
	watchSamp    = prometheus.NewDesc("genailab_monitor_samplers", "Running samplers, one per interval in use.", nil, nil)
	watchMissed  = prometheus.NewDesc("genailab_monitor_watch_missed_snapshots_total", "Snapshots skipped by subscribers too slow to take them.", nil, nil)
	snapshotTime = prometheus.NewDesc("genailab_monitor_snapshot_timestamp_seconds", "When the reported snapshot was taken (Unix time).", nil, nil)
)

// collector renders a Source on every scrape; unchecked (Describe sends
// nothing) because the GPU and process series come and go.
type collector struct{ src Source }

func (c collector) Describe(chan<- *prometheus.Desc) {}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	if c.src.Stats != nil {
		st := c.src.Stats()
		gauge(watchSubs, float64(st.Subscribers))
		gauge(watchSamp, float64(st.Samplers))
		ch <- prometheus.MustNewConstMetric(watchMissed, prometheus.CounterValue, float64(st.Missed))
	}
	snap, ok := c.src.Latest()
	if !ok {
		return
	}
	gauge(snapshotTime, float64(snap.Time.UnixNano())/1e9)
	gauge(cpuUtil, snap.CPU.Percent)
	gauge(memTotal, float64(snap.Memory.Total))
	gauge(memAvail, float64(snap.Memory.Available))
	gauge(memUsed, float64(snap.Memory.Used))
	gauge(swapTotal, float64(snap.Swap.Total))
	gauge(swapUsed, float64(snap.Swap.Used))
	if snap.Disk.Path != "" {
		gauge(diskTotal, float64(snap.Disk.Total), snap.Disk.Path)
		gauge(diskFree, float64(snap.Disk.Free), snap.Disk.Path)
	}

	available := 0.0
	if snap.GPUUnavailable == "" {
		available = 1
	}
	gauge(gpuAvailable, available)
	for _, d := range snap.GPUs {
		idx := strconv.Itoa(d.Index)
		l := []string{idx, d.UUID, "nvidia" + idx, d.Name, c.src.Hostname}
		gauge(fbUsed, float64(d.MemoryUsed)/mib, l...)
		gauge(fbFree, float64(d.MemoryFree)/mib, l...)
		gauge(fbTotal, float64(d.MemoryTotal)/mib, l...)
		if d.HasUtilization {
			gauge(gpuUtil, float64(d.UtilizationGPU), l...)
			gauge(memUtil, float64(d.UtilizationMemory), l...)
		}
		if d.HasTemperature {
			gauge(gpuTemp, float64(d.TemperatureC), l...)
		}
		if d.HasPower {
			gauge(powerUsage, float64(d.PowerDrawMilliwatts)/1000, l...)
		}
		if d.HasPowerLimit {
			gauge(powerLimit, float64(d.PowerLimitMilliwatts)/1000, l...)
		}
		gauge(gpuManaged, float64(d.ManagedMemory), l...)
		gauge(gpuForeign, float64(d.ForeignMemory), l...)
	}
	for _, p := range snap.Managed {
		l := []string{strconv.Itoa(int(p.PID)), p.Name, p.Role}
		gauge(procRSS, float64(p.RSS), l...)
		gauge(procCPU, p.CPUPercent, l...)
		gauge(procVRAM, float64(p.GPUMemory), l...)
	}
}

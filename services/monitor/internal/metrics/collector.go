package metrics

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/genailab/genailab/pkg/metricsserver"
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

	procLabels = []string{"name", "role"}
	procCount  = prometheus.NewDesc("genailab_managed_processes", "Managed engine processes running, by executable name and role.", procLabels, nil)
	procRSS    = prometheus.NewDesc("genailab_managed_process_resident_memory_bytes", "Resident memory of the managed engine processes, by executable name and role.", procLabels, nil)
	procCPU    = prometheus.NewDesc("genailab_managed_process_cpu_percent", "CPU use of the managed engine processes, by executable name and role (100 = one core).", procLabels, nil)
	procVRAM   = prometheus.NewDesc("genailab_managed_process_gpu_memory_bytes", "VRAM of the managed engine processes over all GPUs, by executable name and role.", procLabels, nil)

	gpuRole = prometheus.NewDesc("genailab_gpu_memory_by_role_bytes",
		"VRAM of one GPU by the role of the processes holding it: llm, diffusion (this host's engines), other (other managed processes), foreign (everything else, driver included).",
		append(append([]string{}, gpuLabels...), "role"), nil)

	watchSubs    = prometheus.NewDesc("genailab_monitor_watch_subscribers", "Open WatchUsage streams (and internal subscribers).", nil, nil)
	watchSamp    = prometheus.NewDesc("genailab_monitor_samplers", "Running samplers, one per interval in use.", nil, nil)
	watchMissed  = prometheus.NewDesc("genailab_monitor_watch_missed_snapshots_total", "Snapshots skipped by subscribers too slow to take them.", nil, nil)
	snapshotTime = prometheus.NewDesc("genailab_monitor_snapshot_timestamp_seconds", "When the reported snapshot was taken (Unix time).", nil, nil)
)

// errNoSnapshot fails the sources before the first snapshot.
var errNoSnapshot = errors.New("no snapshot taken yet")

// collector renders a Source on every scrape: the WatchUsage hub's counters, then the
// sources of the newest snapshot (host, gpu, processes) with their scrape status. It is
// unchecked (Describe sends nothing) because the GPU and process series come and go.
type collector struct{ src Source }

func (c collector) Describe(chan<- *prometheus.Desc) {}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	if c.src.Stats != nil {
		st := c.src.Stats()
		gauge(ch, watchSubs, float64(st.Subscribers))
		gauge(ch, watchSamp, float64(st.Samplers))
		ch <- prometheus.MustNewConstMetric(watchMissed, prometheus.CounterValue, float64(st.Missed))
	}
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

// sources are the parts of a snapshot, each with its scrape status.
func (c collector) sources() prometheus.Collector {
	return metricsserver.Sources(nil,
		metricsserver.Source{Name: "host", Collect: c.host},
		metricsserver.Source{Name: "gpu", Collect: c.gpus},
		metricsserver.Source{Name: "processes", Collect: c.processes},
	)
}

// host sends the host's series; it fails before the first snapshot and when a reading of
// the snapshot failed.
func (c collector) host(ch chan<- prometheus.Metric) error {
	snap, ok := c.src.Latest()
	if !ok {
		return errNoSnapshot
	}
	gauge(ch, snapshotTime, float64(snap.Time.UnixNano())/1e9)
	gauge(ch, cpuUtil, snap.CPU.Percent)
	gauge(ch, memTotal, float64(snap.Memory.Total))
	gauge(ch, memAvail, float64(snap.Memory.Available))
	gauge(ch, memUsed, float64(snap.Memory.Used))
	gauge(ch, swapTotal, float64(snap.Swap.Total))
	gauge(ch, swapUsed, float64(snap.Swap.Used))
	if snap.Disk.Path != "" {
		gauge(ch, diskTotal, float64(snap.Disk.Total), snap.Disk.Path)
		gauge(ch, diskFree, float64(snap.Disk.Free), snap.Disk.Path)
	}
	if len(snap.Errors) > 0 {
		return fmt.Errorf("readings failed: %s", strings.Join(snap.Errors, "; "))
	}
	return nil
}

// gpus sends the dcgm-exporter series and the VRAM by role; it fails when NVML cannot be
// read (no library, driver or GPU).
func (c collector) gpus(ch chan<- prometheus.Metric) error {
	snap, ok := c.src.Latest()
	if !ok {
		return errNoSnapshot
	}
	available := 0.0
	if snap.GPUUnavailable == "" {
		available = 1
	}
	gauge(ch, gpuAvailable, available)
	roles := map[int32]string{}
	for _, p := range snap.Managed {
		roles[p.PID] = p.Role
	}
	for _, d := range snap.GPUs {
		idx := strconv.Itoa(d.Index)
		l := []string{idx, d.UUID, "nvidia" + idx, d.Name, c.src.Hostname}
		gauge(ch, fbUsed, float64(d.MemoryUsed)/mib, l...)
		gauge(ch, fbFree, float64(d.MemoryFree)/mib, l...)
		gauge(ch, fbTotal, float64(d.MemoryTotal)/mib, l...)
		if d.HasUtilization {
			gauge(ch, gpuUtil, float64(d.UtilizationGPU), l...)
			gauge(ch, memUtil, float64(d.UtilizationMemory), l...)
		}
		if d.HasTemperature {
			gauge(ch, gpuTemp, float64(d.TemperatureC), l...)
		}
		if d.HasPower {
			gauge(ch, powerUsage, float64(d.PowerDrawMilliwatts)/1000, l...)
		}
		if d.HasPowerLimit {
			gauge(ch, powerLimit, float64(d.PowerLimitMilliwatts)/1000, l...)
		}
		gauge(ch, gpuManaged, float64(d.ManagedMemory), l...)
		gauge(ch, gpuForeign, float64(d.ForeignMemory), l...)
		byRole := map[string]uint64{telemetry.RoleLLM: 0, telemetry.RoleDiffusion: 0, "other": 0}
		var attributed uint64
		for _, p := range d.Processes {
			if !p.Managed || !p.MemoryKnown {
				continue
			}
			role, ok := roles[int32(p.PID)]
			if !ok || (role != telemetry.RoleLLM && role != telemetry.RoleDiffusion) {
				role = "other"
			}
			byRole[role] += p.UsedMemory
			attributed += p.UsedMemory
		}
		// Managed memory NVML does not attribute to a process is "other".
		if d.ManagedMemory > attributed {
			byRole["other"] += d.ManagedMemory - attributed
		}
		byRole["foreign"] = d.ForeignMemory
		for role, v := range byRole {
			gauge(ch, gpuRole, float64(v), append(l, role)...)
		}
	}
	if snap.GPUUnavailable != "" {
		return errors.New(snap.GPUUnavailable)
	}
	return nil
}

// processes sends the managed processes' series, summed by name and role (a pid label
// would be unbounded).
func (c collector) processes(ch chan<- prometheus.Metric) error {
	snap, ok := c.src.Latest()
	if !ok {
		return errNoSnapshot
	}
	type key struct{ name, role string }
	type sums struct {
		n         int
		rss, vram uint64
		cpu       float64
	}
	by := map[key]*sums{}
	for _, p := range snap.Managed {
		k := key{p.Name, p.Role}
		s := by[k]
		if s == nil {
			s = &sums{}
			by[k] = s
		}
		s.n++
		s.rss += p.RSS
		s.vram += p.GPUMemory
		s.cpu += p.CPUPercent
	}
	for k, s := range by {
		gauge(ch, procCount, float64(s.n), k.name, k.role)
		gauge(ch, procRSS, float64(s.rss), k.name, k.role)
		gauge(ch, procCPU, s.cpu, k.name, k.role)
		gauge(ch, procVRAM, float64(s.vram), k.name, k.role)
	}
	return nil
}

package telemetry

import (
	"context"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/shirou/gopsutil/v4/cpu"

	"github.com/genailab/genailab/services/monitor/internal/gpu"
)

// Collector combines the readers into snapshots and system info.
type Collector struct {
	host  *Host
	gpus  *GPUs
	procs *ProcessTable
	log   *slog.Logger
	now   func() time.Time

	cpuOnce sync.Once
	cpuInfo CPUInfo

	errMu   sync.Mutex
	lastErr string
}

// NewCollector combines a host reader, an NVML session and a process table.
func NewCollector(host *Host, gpus *GPUs, procs *ProcessTable, log *slog.Logger) *Collector {
	return &Collector{host: host, gpus: gpus, procs: procs, log: log, now: time.Now}
}

// GPUs is the collector's NVML session.
func (c *Collector) GPUs() *GPUs { return c.gpus }

// cpu returns the CPU description, read once (it does not change and
// reading /proc/cpuinfo is comparatively expensive).
func (c *Collector) cpu(ctx context.Context) CPUInfo {
	c.cpuOnce.Do(func() {
		info, err := c.host.CPUInfo(ctx)
		if err != nil {
			c.log.Warn("reading CPU description", "error", err)
		}
		c.cpuInfo = info
	})
	return c.cpuInfo
}

// SystemInfo describes the machine now.
func (c *Collector) SystemInfo(ctx context.Context) SystemInfo {
	ci := c.cpu(ctx)
	hostname, osName := c.host.Identity(ctx)
	info := SystemInfo{
		Hostname:           hostname,
		OS:                 osName,
		CPUModel:           ci.Model,
		PhysicalCores:      ci.Physical,
		LogicalCores:       ci.Logical,
		RecommendedThreads: RecommendedThreads(ci.Physical, ci.Logical, runtime.NumCPU()),
		DriverVersion:      c.gpus.DriverVersion(),
		CUDAVersion:        c.gpus.CUDAVersion(),
		GPUUnavailable:     c.gpus.Unavailable(),
	}
	var errs []string
	var err error
	if info.Memory, err = c.host.Memory(ctx); err != nil {
		errs = append(errs, err.Error())
	}
	if info.Swap, err = c.host.Swap(ctx); err != nil {
		errs = append(errs, err.Error())
	}
	if info.Disk, err = c.host.Disk(ctx); err != nil {
		errs = append(errs, err.Error())
	}
	info.GPUs, _ = c.readGPUs(ctx, &errs)
	if len(errs) > 0 {
		c.log.Debug("system info incomplete", "errors", errs)
	}
	return info
}

// NewStream starts a stream of snapshots whose CPU percentages each cover
// the time since the stream's previous snapshot. A Stream is used by one
// goroutine at a time.
func (c *Collector) NewStream() *Stream {
	return &Stream{c: c, procCPU: make(map[procKey]procSample)}
}

// Stream is one sampler's view: the collector plus the previous counters.
type Stream struct {
	c       *Collector
	prevCPU []cpu.TimesStat
	procCPU map[procKey]procSample
}

type procKey struct {
	pid     int32
	created int64
}

type procSample struct {
	cpuSeconds float64
	at         time.Time
}

// Next takes a snapshot. Readings that fail are listed in Snapshot.Errors
// (and logged when the set of failures changes); the rest is filled in.
func (s *Stream) Next(ctx context.Context) Snapshot {
	c := s.c
	snap := Snapshot{Time: c.now(), GPUUnavailable: c.gpus.Unavailable()}
	var errs []string

	if cores, err := c.host.CPUTimes(ctx); err == nil {
		snap.CPU = s.cpuUsage(cores)
	} else {
		errs = append(errs, err.Error())
	}
	var err error
	if snap.Memory, err = c.host.Memory(ctx); err != nil {
		errs = append(errs, err.Error())
	}
	if snap.Swap, err = c.host.Swap(ctx); err != nil {
		errs = append(errs, err.Error())
	}
	if snap.Disk, err = c.host.Disk(ctx); err != nil {
		errs = append(errs, err.Error())
	}

	var procs []ProcessReading
	snap.GPUs, procs = c.readGPUs(ctx, &errs)
	snap.Managed = s.managed(procs, snap.GPUs, snap.Time)

	snap.Errors = errs
	c.noteErrors(errs)
	return snap
}

// readGPUs reads NVML and the process table, and attributes each GPU's
// memory to managed processes. errs, if not nil, collects failures.
func (c *Collector) readGPUs(ctx context.Context, errs *[]string) ([]gpu.Device, []ProcessReading) {
	readings := c.gpus.Read()
	onGPU := make(map[int32]bool)
	for _, r := range readings {
		for _, list := range []gpu.Field[[]nvml.ProcessInfo]{r.ComputeProcesses, r.GraphicsProcesses} {
			for _, p := range list.Value {
				onGPU[int32(p.Pid)] = true
			}
		}
	}
	scan, err := c.procs.Scan(ctx, onGPU)
	if err != nil && errs != nil {
		*errs = append(*errs, err.Error())
	}
	managed := make(map[int32]bool, len(scan.Managed))
	for _, p := range scan.Managed {
		managed[p.PID] = true
	}
	identify := func(pid uint32) gpu.Identity {
		return gpu.Identity{Name: scan.Names[int32(pid)], Managed: managed[int32(pid)]}
	}

	devices := make([]gpu.Device, 0, len(readings))
	for _, r := range readings {
		d := gpu.Build(r, identify)
		c.gpus.NoteErrors(d)
		devices = append(devices, d)
	}
	return devices, scan.Managed
}

// cpuUsage computes utilisation since the stream's previous reading.
func (s *Stream) cpuUsage(cores []cpu.TimesStat) CPUUsage {
	u := CPUUsage{PerCore: make([]float64, len(cores))}
	var prevTotal cpu.TimesStat
	if len(s.prevCPU) == len(cores) {
		prevTotal = SumTimes(s.prevCPU)
		for i := range cores {
			u.PerCore[i] = BusyPercent(s.prevCPU[i], cores[i])
		}
	} else {
		for i := range cores {
			u.PerCore[i] = BusyPercent(cpu.TimesStat{}, cores[i])
		}
	}
	u.Percent = BusyPercent(prevTotal, SumTimes(cores))
	s.prevCPU = cores
	return u
}

// managed turns process readings into ManagedProcess values: CPU percent
// from the previous reading of the same process in this stream, GPU memory
// summed over all GPUs.
func (s *Stream) managed(procs []ProcessReading, gpus []gpu.Device, now time.Time) []ManagedProcess {
	if len(procs) == 0 {
		clear(s.procCPU)
		return nil
	}
	vram := make(map[uint32]uint64)
	for _, d := range gpus {
		for _, p := range d.Processes {
			if p.Managed && p.MemoryKnown {
				vram[p.PID] += p.UsedMemory
			}
		}
	}
	out := make([]ManagedProcess, 0, len(procs))
	next := make(map[procKey]procSample, len(procs))
	for _, p := range procs {
		key := procKey{p.PID, p.CreateTime}
		mp := ManagedProcess{PID: p.PID, Name: p.Name, Role: p.Role, RSS: p.RSS, GPUMemory: vram[uint32(p.PID)]}
		if prev, ok := s.procCPU[key]; ok {
			mp.CPUPercent = ProcessCPUPercent(prev.cpuSeconds, p.CPUSeconds, now.Sub(prev.at).Seconds())
		}
		next[key] = procSample{cpuSeconds: p.CPUSeconds, at: now}
		out = append(out, mp)
	}
	s.procCPU = next
	return out
}

// noteErrors logs the set of failing readings when it changes.
func (c *Collector) noteErrors(errs []string) {
	key := ""
	for _, e := range errs {
		key += e + "\n"
	}
	c.errMu.Lock()
	changed := key != c.lastErr
	c.lastErr = key
	c.errMu.Unlock()
	switch {
	case !changed:
	case len(errs) == 0:
		c.log.Info("telemetry readings recovered")
	default:
		c.log.Warn("telemetry readings failing", "errors", errs)
	}
}

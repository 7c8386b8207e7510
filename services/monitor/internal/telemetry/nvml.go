package telemetry

import (
	"fmt"
	"log/slog"
	"sync"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/genailab/genailab/services/monitor/internal/gpu"
)

// NVMLLibrary is the part of NVML the monitor uses. nvml.New() and
// go-nvml's mock servers (e.g. dgxa100.New()) both satisfy it.
type NVMLLibrary interface {
	Init() nvml.Return
	Shutdown() nvml.Return
	SystemGetDriverVersion() (string, nvml.Return)
	SystemGetCudaDriverVersion() (int, nvml.Return)
	DeviceGetCount() (int, nvml.Return)
	DeviceGetHandleByIndex(int) (nvml.Device, nvml.Return)
}

// NVMLDevice is the part of an NVML device handle the monitor reads.
type NVMLDevice interface {
	GetUUID() (string, nvml.Return)
	GetName() (string, nvml.Return)
	GetMemoryInfo() (nvml.Memory, nvml.Return)
	GetUtilizationRates() (nvml.Utilization, nvml.Return)
	GetTemperature(nvml.TemperatureSensors) (uint32, nvml.Return)
	GetPowerUsage() (uint32, nvml.Return)
	GetEnforcedPowerLimit() (uint32, nvml.Return)
	GetComputeRunningProcesses() ([]nvml.ProcessInfo, nvml.Return)
	GetGraphicsRunningProcesses() ([]nvml.ProcessInfo, nvml.Return)
}

// GPUs owns one NVML session: initialised once by OpenGPUs, shut down once
// by Close. Without NVML (no library, no driver, no GPU) it reads nothing
// and Unavailable says why; that is logged once, at open.
type GPUs struct {
	lib         NVMLLibrary
	log         *slog.Logger
	unavailable string
	driver      string
	cuda        string
	devices     []nvmlDevice

	mu       sync.Mutex
	closed   bool
	lastErrs map[string]string // device UUID -> last logged error set
}

type nvmlDevice struct {
	index int
	uuid  string
	name  string
	dev   NVMLDevice
}

// OpenGPUs initialises NVML through lib. It never fails: when NVML cannot be
// used the returned GPUs reports no devices and a reason. lib may be nil,
// meaning no NVML library at all; detail, if not empty, is appended to the
// reason (e.g. the dynamic loader's message).
func OpenGPUs(lib NVMLLibrary, detail string, log *slog.Logger) *GPUs {
	g := &GPUs{lib: lib, log: log, lastErrs: make(map[string]string)}
	if lib == nil {
		g.disable(nil, "no NVML library", detail)
		return g
	}
	if ret := lib.Init(); ret != nvml.SUCCESS {
		g.disable(nil, "init: "+ret.Error(), detail)
		return g
	}
	if v, ret := lib.SystemGetDriverVersion(); ret == nvml.SUCCESS {
		g.driver = v
	}
	if v, ret := lib.SystemGetCudaDriverVersion(); ret == nvml.SUCCESS {
		g.cuda = CUDAVersionString(v)
	}
	count, ret := lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		g.disable(lib, "device count: "+ret.Error(), detail)
		return g
	}
	for i := range count {
		h, ret := lib.DeviceGetHandleByIndex(i)
		if ret != nvml.SUCCESS {
			log.Warn("NVML device skipped", "index", i, "error", ret.Error())
			continue
		}
		d := nvmlDevice{index: i, dev: h}
		if d.uuid, ret = h.GetUUID(); ret != nvml.SUCCESS {
			d.uuid = fmt.Sprintf("GPU-index-%d", i)
		}
		if d.name, ret = h.GetName(); ret != nvml.SUCCESS {
			d.name = "unknown NVIDIA GPU"
		}
		g.devices = append(g.devices, d)
	}
	if len(g.devices) == 0 {
		g.disable(lib, "no NVIDIA GPU found", "")
		return g
	}
	log.Info("NVML initialised", "gpus", len(g.devices), "driver", g.driver, "cuda", g.cuda)
	return g
}

// disable records why GPUs cannot be read, logs it once, and shuts NVML
// down again if it had been initialised (initialised non-nil).
func (g *GPUs) disable(initialised NVMLLibrary, why, detail string) {
	g.unavailable = "NVML not available: " + why
	if detail != "" {
		g.unavailable += " (" + detail + ")"
	}
	g.log.Info("GPU telemetry disabled", "reason", g.unavailable)
	if initialised != nil {
		initialised.Shutdown()
	}
	g.lib = nil
}

// Unavailable is the reason no GPU can be read, or "" when NVML works.
func (g *GPUs) Unavailable() string { return g.unavailable }

// DriverVersion is the NVIDIA driver version ("" without NVML).
func (g *GPUs) DriverVersion() string { return g.driver }

// CUDAVersion is the driver's CUDA version, e.g. "12.4" ("" without NVML).
func (g *GPUs) CUDAVersion() string { return g.cuda }

// Read reads every GPU once. It returns nil when NVML is unavailable or
// closed. Failing queries are logged when a device's set of failures
// changes, not on every read.
func (g *GPUs) Read() []gpu.Reading {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.lib == nil || g.closed {
		return nil
	}
	out := make([]gpu.Reading, 0, len(g.devices))
	for _, d := range g.devices {
		out = append(out, readDevice(d))
	}
	return out
}

func readDevice(d nvmlDevice) gpu.Reading {
	h := d.dev
	r := gpu.Reading{Index: d.index, UUID: d.uuid, Name: d.name}
	r.Memory = gpu.Of(h.GetMemoryInfo())
	r.Utilization = gpu.Of(h.GetUtilizationRates())
	r.Temperature = gpu.Of(h.GetTemperature(nvml.TEMPERATURE_GPU))
	r.PowerUsage = gpu.Of(h.GetPowerUsage())
	r.PowerLimit = gpu.Of(h.GetEnforcedPowerLimit())
	r.ComputeProcesses = gpu.Of(h.GetComputeRunningProcesses())
	r.GraphicsProcesses = gpu.Of(h.GetGraphicsRunningProcesses())
	return r
}

// NoteErrors logs a device's query failures when they differ from the
// last ones logged for it, so a lost GPU is reported once, not every second.
func (g *GPUs) NoteErrors(d gpu.Device) {
	key := fmt.Sprint(d.Errors)
	g.mu.Lock()
	last, seen := g.lastErrs[d.UUID]
	g.lastErrs[d.UUID] = key
	g.mu.Unlock()
	if key == last || (!seen && len(d.Errors) == 0) {
		return
	}
	if len(d.Errors) == 0 {
		g.log.Info("GPU queries recovered", "index", d.Index, "uuid", d.UUID)
		return
	}
	g.log.Warn("GPU queries failing", "index", d.Index, "uuid", d.UUID, "errors", d.Errors)
}

// Close shuts NVML down; reads after Close return nothing. Safe to call
// more than once.
func (g *GPUs) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed || g.lib == nil {
		g.closed = true
		return nil
	}
	g.closed = true
	if ret := g.lib.Shutdown(); ret != nvml.SUCCESS {
		return fmt.Errorf("nvml shutdown: %s", ret.Error())
	}
	return nil
}

// CUDAVersionString renders NVML's CUDA driver version (1000*major +
// 10*minor, e.g. 12040) as "12.4".
func CUDAVersionString(v int) string {
	if v <= 0 {
		return ""
	}
	return fmt.Sprintf("%d.%d", v/1000, v%1000/10)
}

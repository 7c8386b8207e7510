package gpu

import (
	"fmt"
	"slices"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// Device is one GPU as the monitor reports it.
type Device struct {
	Index int
	UUID  string
	Name  string

	MemoryTotal uint64 // bytes
	MemoryUsed  uint64 // bytes
	MemoryFree  uint64 // bytes

	// Availability flags: NVML may not support a query on a given board
	// (e.g. power on some consumer cards); a false flag means the value
	// is absent, not zero.
	HasUtilization bool
	HasTemperature bool
	HasPower       bool
	HasPowerLimit  bool

	UtilizationGPU       uint32 // percent of time a kernel ran
	UtilizationMemory    uint32 // percent of time memory was read or written
	TemperatureC         uint32 // °C
	PowerDrawMilliwatts  uint32
	PowerLimitMilliwatts uint32 // enforced limit

	// Processes using the GPU, each PID once, sorted by PID.
	Processes []Process

	// ManagedMemory is the VRAM used by processes this host's services
	// manage; ForeignMemory is the rest of MemoryUsed (other programs,
	// processes invisible to us, driver reservations).
	ManagedMemory uint64
	ForeignMemory uint64

	// Errors lists queries that failed for a reason other than "not
	// supported" (e.g. "memory: ERROR_GPU_IS_LOST"), sorted.
	Errors []string
}

// Process is one process's use of one GPU.
type Process struct {
	PID uint32
	// Name is the executable's name, "" when the process is not visible
	// (e.g. it runs in another PID namespace).
	Name string
	// UsedMemory is in bytes; meaningful only when MemoryKnown (NVML
	// reports "not available" without sufficient privileges or under WDDM).
	UsedMemory  uint64
	MemoryKnown bool
	Managed     bool
}

// Identity is what the process table knows about a PID.
type Identity struct {
	Name string
	// Managed is true for processes this host's services manage.
	Managed bool
}

// IdentifyFunc looks a GPU process's PID up in the process table.
type IdentifyFunc func(pid uint32) Identity

// Build converts a raw reading into a Device, naming its processes and
// attributing its memory with identify, which may be nil (nothing known,
// nothing managed).
func Build(r Reading, identify IdentifyFunc) Device {
	d := Device{Index: r.Index, UUID: r.UUID, Name: r.Name}
	note := func(what string, ret nvml.Return) {
		if ret != nvml.SUCCESS && ret != nvml.ERROR_NOT_SUPPORTED {
			d.Errors = append(d.Errors, fmt.Sprintf("%s: %s", what, ret.Error()))
		}
	}

	if r.Memory.OK() {
		m := r.Memory.Value
		d.MemoryTotal, d.MemoryUsed, d.MemoryFree = m.Total, m.Used, m.Free
	}
	note("memory", r.Memory.Ret)

	if d.HasUtilization = r.Utilization.OK(); d.HasUtilization {
		d.UtilizationGPU = r.Utilization.Value.Gpu
		d.UtilizationMemory = r.Utilization.Value.Memory
	}
	note("utilization", r.Utilization.Ret)

	if d.HasTemperature = r.Temperature.OK(); d.HasTemperature {
		d.TemperatureC = r.Temperature.Value
	}
	note("temperature", r.Temperature.Ret)

	if d.HasPower = r.PowerUsage.OK(); d.HasPower {
		d.PowerDrawMilliwatts = r.PowerUsage.Value
	}
	note("power usage", r.PowerUsage.Ret)

	if d.HasPowerLimit = r.PowerLimit.OK(); d.HasPowerLimit {
		d.PowerLimitMilliwatts = r.PowerLimit.Value
	}
	note("power limit", r.PowerLimit.Ret)

	var compute, graphics []nvml.ProcessInfo
	if r.ComputeProcesses.OK() {
		compute = r.ComputeProcesses.Value
	}
	note("compute processes", r.ComputeProcesses.Ret)
	if r.GraphicsProcesses.OK() {
		graphics = r.GraphicsProcesses.Value
	}
	note("graphics processes", r.GraphicsProcesses.Ret)

	d.Processes = MergeProcesses(compute, graphics)
	if identify != nil {
		for i := range d.Processes {
			p := &d.Processes[i]
			id := identify(p.PID)
			p.Name, p.Managed = id.Name, id.Managed
		}
	}
	d.ManagedMemory, d.ForeignMemory = Attribute(d.MemoryUsed, d.Processes)
	slices.Sort(d.Errors)
	return d
}

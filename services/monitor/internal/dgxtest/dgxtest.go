// Package dgxtest is a stand-in for NVIDIA GPUs in tests: go-nvml's own
// simulated DGX A100 (pkg/nvml/mock/dgxa100, eight A100-SXM4-40GB) with the
// queries the monitor makes — memory, utilisation, temperature, power and
// running processes — answered from values the test sets. The mock's
// identity data (names, UUIDs, driver "550.54.15", CUDA 12.4) is go-nvml's.
package dgxtest

import (
	"sync"
	"sync/atomic"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
)

// GPUs is the number of GPUs in a DGX A100.
const GPUs = 8

// GPU is the state one simulated GPU reports.
type GPU struct {
	UsedBytes    uint64
	UtilGPU      uint32 // percent
	UtilMemory   uint32 // percent
	TemperatureC uint32
	PowerMW      uint32
	PowerLimitMW uint32
	// Compute and Graphics are the running process lists NVML returns.
	Compute  []nvml.ProcessInfo
	Graphics []nvml.ProcessInfo
}

// Machine is a simulated DGX A100 whose readings tests control.
type Machine struct {
	*server.Server

	mu   sync.Mutex
	gpus [GPUs]GPU

	inits     atomic.Int32
	shutdowns atomic.Int32
}

// New returns a DGX A100 with idle GPUs: nothing used, 30 °C, 60 W of 400 W.
func New() *Machine {
	m := &Machine{Server: dgxa100.New()}
	for i := range m.gpus {
		m.gpus[i] = GPU{TemperatureC: 30, PowerMW: 60_000, PowerLimitMW: 400_000}
	}
	init, shutdown := m.InitFunc, m.ShutdownFunc
	m.InitFunc = func() nvml.Return { m.inits.Add(1); return init() }
	m.ShutdownFunc = func() nvml.Return { m.shutdowns.Add(1); return shutdown() }
	for i, h := range m.Devices {
		m.wire(i, h.(*server.Device))
	}
	return m
}

func (m *Machine) wire(i int, d *server.Device) {
	read := func() GPU {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.gpus[i]
	}
	total := d.MemoryInfo.Total
	d.GetMemoryInfoFunc = func() (nvml.Memory, nvml.Return) {
		g := read()
		used := min(g.UsedBytes, total)
		return nvml.Memory{Total: total, Used: used, Free: total - used}, nvml.SUCCESS
	}
	d.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) {
		g := read()
		return nvml.Utilization{Gpu: g.UtilGPU, Memory: g.UtilMemory}, nvml.SUCCESS
	}
	d.GetTemperatureFunc = func(s nvml.TemperatureSensors) (uint32, nvml.Return) {
		if s != nvml.TEMPERATURE_GPU {
			return 0, nvml.ERROR_INVALID_ARGUMENT
		}
		return read().TemperatureC, nvml.SUCCESS
	}
	d.GetPowerUsageFunc = func() (uint32, nvml.Return) { return read().PowerMW, nvml.SUCCESS }
	d.GetEnforcedPowerLimitFunc = func() (uint32, nvml.Return) { return read().PowerLimitMW, nvml.SUCCESS }
	d.GetComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) {
		return append([]nvml.ProcessInfo(nil), read().Compute...), nvml.SUCCESS
	}
	d.GetGraphicsRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) {
		return append([]nvml.ProcessInfo(nil), read().Graphics...), nvml.SUCCESS
	}
}

// Set replaces GPU i's state.
func (m *Machine) Set(i int, g GPU) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gpus[i] = g
}

// Device returns GPU i's mock handle, e.g. to make one query fail.
func (m *Machine) Device(i int) *server.Device { return m.Devices[i].(*server.Device) }

// Inits and Shutdowns count the calls to nvml Init and Shutdown.
func (m *Machine) Inits() int     { return int(m.inits.Load()) }
func (m *Machine) Shutdowns() int { return int(m.shutdowns.Load()) }

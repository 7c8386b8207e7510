package telemetry

import (
	"time"

	"github.com/genailab/genailab/services/monitor/internal/gpu"
)

// Snapshot is the machine's resource usage at one instant.
type Snapshot struct {
	Time   time.Time
	CPU    CPUUsage
	Memory Memory
	Swap   Swap
	Disk   Disk

	// GPUs is empty when NVML is unavailable; GPUUnavailable then says why
	// ("NVML not available: ...").
	GPUs           []gpu.Device
	GPUUnavailable string

	// Managed lists the processes this host's services manage (engines),
	// sorted by PID.
	Managed []ManagedProcess

	// Errors lists readings that failed in this pass; the rest of the
	// snapshot is still valid.
	Errors []string
}

// CPUUsage is CPU utilisation over the interval since the previous snapshot
// of the same stream, in percent (0-100). The first snapshot of a stream
// covers the time since boot.
type CPUUsage struct {
	Percent float64
	PerCore []float64
}

// Memory is physical RAM in bytes. Available is what can be allocated
// without swapping (MemAvailable), Used is Total minus free and caches.
type Memory struct {
	Total     uint64
	Available uint64
	Used      uint64
}

// Swap is swap space in bytes.
type Swap struct {
	Total uint64
	Used  uint64
	Free  uint64
}

// Disk is the file system holding the data directory, in bytes. Path is the
// directory actually measured (the data dir, or its nearest existing parent
// before it is created).
type Disk struct {
	Path  string
	Total uint64
	Free  uint64 // available to unprivileged users
	Used  uint64
}

// ManagedProcess is one engine process run by this host's services.
type ManagedProcess struct {
	PID  int32
	Name string
	Role string // RoleLLM or RoleDiffusion
	// RSS is resident memory in bytes.
	RSS uint64
	// CPUPercent is CPU time over the stream's interval, where 100 means
	// one core fully busy (as top reports it); 0 on a stream's first pass.
	CPUPercent float64
	// GPUMemory is the VRAM the process holds across all GPUs, in bytes.
	GPUMemory uint64
}

// SystemInfo describes the machine: mostly static facts plus current totals.
type SystemInfo struct {
	Hostname string
	OS       string // e.g. "debian 13.1 (linux 6.12.0-amd64)"

	CPUModel           string
	PhysicalCores      int
	LogicalCores       int
	RecommendedThreads int

	Memory Memory
	Swap   Swap
	Disk   Disk

	DriverVersion  string // NVIDIA driver, empty without NVML
	CUDAVersion    string // e.g. "12.4", empty without NVML
	GPUs           []gpu.Device
	GPUUnavailable string
}

// Package telemetry reads the machine: CPU, RAM, swap and disk through
// gopsutil, processes through gopsutil's process table, and GPUs through
// NVML behind the narrow NVMLLibrary interface.
//
// Reading is kept apart from computing: NVML readings are turned into the
// monitor's GPU model by the pure functions of package gpu, and CPU
// percentages are computed from counter deltas by pure functions here. A
// Collector combines the readers; each sampler owns a Stream, which keeps
// the previous counters so that CPU percentages cover that sampler's own
// interval.
//
// Tests drive the real code paths with go-nvml's own mock (the simulated
// DGX A100 in pkg/nvml/mock/dgxa100), a stand-in for NVIDIA GPUs.
package telemetry

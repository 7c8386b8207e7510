// Package gpu turns raw NVML readings into the monitor's GPU model.
//
// Everything here is a pure function of its inputs: the telemetry package does
// the reading (through NVML or go-nvml's mock), this package does the
// computing — unit conversion, merging a process's compute and graphics
// entries, and attributing each GPU's used memory to managed engine processes
// versus everything else ("foreign" VRAM).
package gpu

package gpu

import (
	"cmp"
	"slices"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// notAvailable is NVML_VALUE_NOT_AVAILABLE as an unsigned 64-bit value: what
// NVML puts in usedGpuMemory when it cannot tell a process's usage.
const notAvailable = ^uint64(0)

// MergeProcesses merges NVML's compute and graphics process lists into one
// entry per PID, sorted by PID. A process doing both appears in both lists
// with the same allocation, so the larger known figure is kept, not the sum.
func MergeProcesses(lists ...[]nvml.ProcessInfo) []Process {
	byPID := make(map[uint32]int)
	var out []Process
	for _, list := range lists {
		for _, pi := range list {
			known := pi.UsedGpuMemory != notAvailable
			var mem uint64
			if known {
				mem = pi.UsedGpuMemory
			}
			if i, seen := byPID[pi.Pid]; seen {
				p := &out[i]
				if known && (!p.MemoryKnown || mem > p.UsedMemory) {
					p.UsedMemory, p.MemoryKnown = mem, true
				}
				continue
			}
			byPID[pi.Pid] = len(out)
			out = append(out, Process{PID: pi.Pid, UsedMemory: mem, MemoryKnown: known})
		}
	}
	slices.SortFunc(out, func(a, b Process) int { return cmp.Compare(a.PID, b.PID) })
	return out
}

// Attribute splits a GPU's used memory into the part held by managed
// processes and the foreign rest. Foreign memory is used minus managed,
// never negative: NVML's per-process figures and the device total are
// read at slightly different instants and may disagree by a little.
func Attribute(used uint64, procs []Process) (managed, foreign uint64) {
	for _, p := range procs {
		if p.Managed && p.MemoryKnown {
			managed += p.UsedMemory
		}
	}
	if used > managed {
		foreign = used - managed
	}
	return managed, foreign
}

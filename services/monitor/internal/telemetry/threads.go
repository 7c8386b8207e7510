package telemetry

// bigMachineCores is the physical core count above which one core is left
// to the rest of the system.
const bigMachineCores = 4

// RecommendedThreads is the thread count suggested for CPU inference
// engines (llama.cpp's -t, sd.cpp's -t).
//
// It counts physical cores, not logical ones: the matrix kernels keep a
// core's vector units and the memory bus busy, so an SMT sibling adds
// almost nothing and two threads on one core slow each other down. usable
// (the CPUs this process may run on, runtime.NumCPU) caps it, for machines
// where the scheduler affinity hides cores.
//
// On machines with more than four physical cores one core is left for the
// system — the OS, these services, the HTTP/gRPC servers. llama.cpp's worker
// threads meet at a barrier after every operation, so a single preempted
// worker stalls all of them; giving up one core of many costs little and
// removes those stalls. On four cores or fewer each core is a quarter of the
// compute or more, so all are used.
//
// Unknown counts (0) fall back to logical cores, and the result is at least 1.
func RecommendedThreads(physical, logical, usable int) int {
	n := physical
	if n <= 0 {
		n = logical
	}
	if usable > 0 && (n <= 0 || usable < n) {
		n = usable
	}
	if n > bigMachineCores {
		n--
	}
	return max(n, 1)
}

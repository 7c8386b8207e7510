package service

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// HostFacts are the machine properties automatic configuration depends on.
type HostFacts struct {
	// Threads is the number of CPU threads llama-server should use: the
	// physical cores the process may run on.
	Threads int
	// MemAvailable is the memory available for new allocations in bytes
	// (/proc/meminfo MemAvailable); 0 when unknown.
	MemAvailable uint64
	// GPU reports whether a GPU device node is present (NVIDIA or AMD).
	GPU bool
}

// ReadHostFacts reads the facts of this machine from /proc and /dev.
func ReadHostFacts() HostFacts {
	return HostFacts{Threads: cpuThreads(), MemAvailable: readMemAvailable(), GPU: gpuPresent("/dev")}
}

// HostFactsReader returns a reader of the host facts that reads the CPU
// topology and the GPU device nodes once (reading /proc/cpuinfo takes
// milliseconds on large hosts; devices appear when the driver loads, before
// the service starts) and the available memory on every call.
func HostFactsReader() func() HostFacts {
	f := ReadHostFacts()
	return func() HostFacts {
		g := f
		g.MemAvailable = readMemAvailable()
		return g
	}
}

// cpuThreads is the number of physical cores this process may run on.
func cpuThreads() int {
	n := runtime.NumCPU() // honours the CPU affinity mask
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		if cores := physicalCores(b); cores > 0 && cores < n {
			n = cores
		}
	}
	return n
}

func readMemAvailable() uint64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	return memAvailable(b)
}

// physicalCores counts the distinct (physical id, core id) pairs of a
// /proc/cpuinfo text; 0 when the file does not say (some VMs and arches).
func physicalCores(cpuinfo []byte) int {
	seen := map[[2]string]bool{}
	var phys, core string
	flush := func() {
		if core != "" {
			seen[[2]string{phys, core}] = true
		}
		phys, core = "", ""
	}
	sc := bufio.NewScanner(bytes.NewReader(cpuinfo))
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			flush()
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "physical id":
			phys = strings.TrimSpace(v)
		case "core id":
			core = strings.TrimSpace(v)
		}
	}
	flush()
	return len(seen)
}

// memAvailable returns MemAvailable of a /proc/meminfo text in bytes, or 0.
func memAvailable(meminfo []byte) uint64 {
	sc := bufio.NewScanner(bytes.NewReader(meminfo))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "MemAvailable:" {
			n, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				return 0
			}
			if len(f) >= 3 && strings.EqualFold(f[2], "kB") {
				n *= 1024
			}
			return n
		}
	}
	return 0
}

// gpuPresent reports whether dev holds an NVIDIA (nvidia0, nvidia1, ...) or
// AMD (kfd) compute device node.
func gpuPresent(dev string) bool {
	if m, _ := filepath.Glob(filepath.Join(dev, "nvidia[0-9]*")); len(m) > 0 {
		return true
	}
	_, err := os.Stat(filepath.Join(dev, "kfd"))
	return err == nil
}

package telemetry

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/genailab/genailab/services/monitor/internal/dgxtest"
)

func TestStreamAttributesVRAMAndMeasuresEngines(t *testing.T) {
	ctx := context.Background()
	log, _ := newTestLogger()
	llama := startHelper(t, "llama-server", "spin")
	other := startHelper(t, "python3", "sleep")
	llamaPID, otherPID := uint32(llama.Process.Pid), uint32(other.Process.Pid)

	m := dgxtest.New()
	// GPU 0: the engine holds 20 GiB, a foreign program 5 GiB, plus 1 GiB
	// the driver reserves. GPU 1: the engine spills 2 GiB over.
	m.Set(0, dgxtest.GPU{UsedBytes: 26 << 30, Compute: []nvml.ProcessInfo{
		{Pid: llamaPID, UsedGpuMemory: 20 << 30}, {Pid: otherPID, UsedGpuMemory: 5 << 30},
	}})
	m.Set(1, dgxtest.GPU{UsedBytes: 2 << 30, Compute: []nvml.ProcessInfo{{Pid: llamaPID, UsedGpuMemory: 2 << 30}}})
	gpus := OpenGPUs(m, "", log)
	defer gpus.Close()

	c := NewCollector(NewHost(t.TempDir()), gpus, NewProcessTable(DefaultManagedNames(), nil), log)
	s := c.NewStream()
	first := s.Next(ctx)
	// Let the engine burn some CPU between passes.
	cpuSeconds := func() float64 {
		s, _ := c.procs.Scan(ctx, nil)
		if i := slices.IndexFunc(s.Managed, func(r ProcessReading) bool { return r.PID == int32(llamaPID) }); i >= 0 {
			return s.Managed[i].CPUSeconds
		}
		return 0
	}
	start := cpuSeconds()
	for deadline := time.Now().Add(30 * time.Second); ; {
		if cpuSeconds() > start+0.05 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("spinning helper got no CPU time in 30 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	snap := s.Next(ctx)

	if len(snap.Errors) != 0 || len(first.Errors) != 0 {
		t.Fatalf("errors: %v %v", first.Errors, snap.Errors)
	}
	if len(snap.GPUs) != dgxtest.GPUs || snap.GPUUnavailable != "" {
		t.Fatalf("%d GPUs, reason %q", len(snap.GPUs), snap.GPUUnavailable)
	}
	g0, g1 := snap.GPUs[0], snap.GPUs[1]
	if g0.ManagedMemory != 20<<30 || g0.ForeignMemory != 6<<30 {
		t.Fatalf("GPU0 managed %d foreign %d", g0.ManagedMemory, g0.ForeignMemory)
	}
	if g1.ManagedMemory != 2<<30 || g1.ForeignMemory != 0 {
		t.Fatalf("GPU1 managed %d foreign %d", g1.ManagedMemory, g1.ForeignMemory)
	}
	want := map[uint32]string{llamaPID: "llama-server", otherPID: "python3"}
	for _, p := range g0.Processes {
		if want[p.PID] != p.Name || p.Managed != (p.PID == llamaPID) {
			t.Fatalf("GPU0 process %+v", p)
		}
	}
	// Other llama-servers may run on a shared machine; look for ours.
	mp, ok := findManaged(snap.Managed, int32(llamaPID))
	if !ok {
		t.Fatalf("managed processes %+v lack the llama-server helper", snap.Managed)
	}
	if _, ok := findManaged(snap.Managed, int32(otherPID)); ok {
		t.Fatalf("python3 reported as managed: %+v", snap.Managed)
	}
	if mp.PID != int32(llamaPID) || mp.Name != "llama-server" || mp.Role != RoleLLM || mp.GPUMemory != 22<<30 || mp.RSS == 0 {
		t.Fatalf("managed process %+v", mp)
	}
	if mp.CPUPercent <= 0 {
		t.Fatalf("spinning engine CPU %v%%, want > 0", mp.CPUPercent)
	}
	if fp, ok := findManaged(first.Managed, int32(llamaPID)); !ok || fp.CPUPercent != 0 {
		t.Fatalf("first pass has no interval, CPU should be 0: %+v", first.Managed)
	}
	if snap.CPU.Percent < 0 || snap.CPU.Percent > 100 || len(snap.CPU.PerCore) == 0 {
		t.Fatalf("cpu %+v", snap.CPU)
	}
	if !(snap.Memory.Total > snap.Memory.Available && snap.Memory.Available > 0) || snap.Disk.Free == 0 {
		t.Fatalf("memory %+v disk %+v", snap.Memory, snap.Disk)
	}
}

func findManaged(list []ManagedProcess, pid int32) (ManagedProcess, bool) {
	for _, m := range list {
		if m.PID == pid {
			return m, true
		}
	}
	return ManagedProcess{}, false
}

func TestSystemInfoWithoutNVML(t *testing.T) {
	log, logs := newTestLogger()
	gpus := OpenGPUs(nil, "", log)
	c := NewCollector(NewHost(t.TempDir()), gpus, NewProcessTable(nil, nil), log)
	info := c.SystemInfo(context.Background())
	if info.GPUUnavailable != "NVML not available: no NVML library" || len(info.GPUs) != 0 {
		t.Fatalf("gpus %+v reason %q", info.GPUs, info.GPUUnavailable)
	}
	if info.LogicalCores < 1 || info.RecommendedThreads < 1 || info.RecommendedThreads > info.LogicalCores {
		t.Fatalf("cores %d threads %d", info.LogicalCores, info.RecommendedThreads)
	}
	if info.Memory.Total == 0 || info.Disk.Free == 0 || info.Hostname == "" || info.OS == "" {
		t.Fatalf("info %+v", info)
	}
	s := c.NewStream()
	for range 20 {
		snap := s.Next(context.Background())
		if snap.GPUUnavailable == "" || len(snap.GPUs) != 0 {
			t.Fatalf("snapshot gpus %+v reason %q", snap.GPUs, snap.GPUUnavailable)
		}
	}
	if n := logs.Count("NVML"); n != 1 {
		t.Fatalf("NVML logged %d times:\n%s", n, logs)
	}
}

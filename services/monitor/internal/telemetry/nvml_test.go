package telemetry

import (
	"strings"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"

	"github.com/genailab/genailab/services/monitor/internal/dgxtest"
	"github.com/genailab/genailab/services/monitor/internal/gpu"
)

func TestGPUsReadsSimulatedDGX(t *testing.T) {
	log, logs := newTestLogger()
	m := dgxtest.New()
	m.Set(2, dgxtest.GPU{
		UsedBytes: 10 << 30, UtilGPU: 91, UtilMemory: 33, TemperatureC: 71,
		PowerMW: 312_000, PowerLimitMW: 400_000,
		Compute: []nvml.ProcessInfo{{Pid: 4242, UsedGpuMemory: 9 << 30}},
	})
	g := OpenGPUs(m, "", log)
	defer g.Close()

	if g.Unavailable() != "" {
		t.Fatalf("unavailable: %s", g.Unavailable())
	}
	if g.DriverVersion() != "550.54.15" || g.CUDAVersion() != "12.4" {
		t.Fatalf("driver %q cuda %q", g.DriverVersion(), g.CUDAVersion())
	}
	readings := g.Read()
	if len(readings) != dgxtest.GPUs {
		t.Fatalf("%d readings, want %d", len(readings), dgxtest.GPUs)
	}
	uuids := map[string]bool{}
	for i, r := range readings {
		if r.Index != i || !strings.Contains(r.Name, "A100-SXM4-40GB") || !strings.HasPrefix(r.UUID, "GPU-") {
			t.Fatalf("reading %d identity: %d %q %q", i, r.Index, r.Name, r.UUID)
		}
		uuids[r.UUID] = true
	}
	if len(uuids) != dgxtest.GPUs {
		t.Fatalf("UUIDs not distinct: %v", uuids)
	}
	d := gpu.Build(readings[2], nil)
	if d.MemoryTotal != 40960<<20 || d.MemoryUsed != 10<<30 || d.MemoryFree != d.MemoryTotal-d.MemoryUsed {
		t.Fatalf("memory %d/%d/%d", d.MemoryTotal, d.MemoryUsed, d.MemoryFree)
	}
	if d.UtilizationGPU != 91 || d.TemperatureC != 71 || d.PowerDrawMilliwatts != 312_000 || d.PowerLimitMilliwatts != 400_000 {
		t.Fatalf("device %+v", d)
	}
	if len(d.Processes) != 1 || d.Processes[0].PID != 4242 || d.ForeignMemory != 10<<30 {
		t.Fatalf("processes %+v foreign %d", d.Processes, d.ForeignMemory)
	}
	if n := logs.Count("NVML initialised"); n != 1 {
		t.Fatalf("logged init %d times:\n%s", n, logs)
	}
}

func TestGPUsInitOnceShutdownOnce(t *testing.T) {
	log, _ := newTestLogger()
	m := dgxtest.New()
	g := OpenGPUs(m, "", log)
	for range 5 {
		g.Read()
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if m.Inits() != 1 || m.Shutdowns() != 1 {
		t.Fatalf("init %d shutdown %d, want 1 and 1", m.Inits(), m.Shutdowns())
	}
	if r := g.Read(); r != nil {
		t.Fatalf("read after close returned %d readings", len(r))
	}
}

func TestGPUsWithoutNVML(t *testing.T) {
	m := dgxtest.New()
	m.InitFunc = func() nvml.Return { return nvml.ERROR_LIBRARY_NOT_FOUND }
	noGPU := dgxa100.NewWithGPUs()

	cases := []struct {
		name   string
		lib    NVMLLibrary
		detail string
		want   string
	}{
		{"no library", nil, "", "NVML not available: no NVML library"},
		{"init fails", m, "libnvidia-ml.so.1: cannot open shared object file",
			"NVML not available: init: ERROR_LIBRARY_NOT_FOUND (libnvidia-ml.so.1: cannot open shared object file)"},
		{"no GPU", noGPU, "", "NVML not available: no NVIDIA GPU found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			log, logs := newTestLogger()
			g := OpenGPUs(c.lib, c.detail, log)
			if g.Unavailable() != c.want {
				t.Fatalf("reason %q, want %q", g.Unavailable(), c.want)
			}
			for range 100 {
				if r := g.Read(); r != nil {
					t.Fatalf("read returned %d readings", len(r))
				}
			}
			if err := g.Close(); err != nil {
				t.Fatal(err)
			}
			if n := logs.Count("NVML"); n != 1 {
				t.Fatalf("NVML logged %d times, want once:\n%s", n, logs)
			}
		})
	}
}

// TestSystemNVML opens the machine's real NVML. Without an NVIDIA driver
// (CI, this project's dev machines) it must degrade to a reason that says
// what the loader said.
func TestSystemNVML(t *testing.T) {
	log, logs := newTestLogger()
	g := OpenSystemGPUs(log)
	defer g.Close()
	if g.Unavailable() == "" {
		t.Logf("NVML present: driver %s, CUDA %s, %d GPUs", g.DriverVersion(), g.CUDAVersion(), len(g.Read()))
		return
	}
	t.Logf("reason: %s", g.Unavailable())
	want := "NVML not available: init: ERROR_LIBRARY_NOT_FOUND (libnvidia-ml.so.1: cannot open shared object file"
	if !strings.HasPrefix(g.Unavailable(), want) {
		t.Fatalf("reason %q, want prefix %q", g.Unavailable(), want)
	}
	if g.Read() != nil {
		t.Fatal("read without NVML returned readings")
	}
	if n := logs.Count("NVML not available"); n != 1 {
		t.Fatalf("logged %d times:\n%s", n, logs)
	}
}

func TestGPUErrorsLoggedOnChangeOnly(t *testing.T) {
	log, logs := newTestLogger()
	m := dgxtest.New()
	lost := true
	m.Device(5).GetPowerUsageFunc = func() (uint32, nvml.Return) {
		if lost {
			return 0, nvml.ERROR_GPU_IS_LOST
		}
		return 1000, nvml.SUCCESS
	}
	g := OpenGPUs(m, "", log)
	defer g.Close()
	for range 10 {
		for _, r := range g.Read() {
			g.NoteErrors(gpu.Build(r, nil))
		}
	}
	if n := logs.Count("GPU queries failing"); n != 1 {
		t.Fatalf("failure logged %d times, want 1:\n%s", n, logs)
	}
	lost = false
	for range 10 {
		for _, r := range g.Read() {
			g.NoteErrors(gpu.Build(r, nil))
		}
	}
	if n := logs.Count("GPU queries recovered"); n != 1 {
		t.Fatalf("recovery logged %d times, want 1:\n%s", n, logs)
	}
}

func TestCUDAVersionString(t *testing.T) {
	for v, want := range map[int]string{12040: "12.4", 11080: "11.8", 13000: "13.0", 0: ""} {
		if got := CUDAVersionString(v); got != want {
			t.Errorf("CUDAVersionString(%d) = %q, want %q", v, got, want)
		}
	}
}

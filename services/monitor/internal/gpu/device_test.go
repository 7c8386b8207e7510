package gpu

import (
	"reflect"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

const gib = 1 << 30

func TestBuildConvertsUnitsAndAttributes(t *testing.T) {
	r := Reading{
		Index:       3,
		UUID:        "GPU-abc",
		Name:        "NVIDIA A100-SXM4-40GB",
		Memory:      Of(nvml.Memory{Total: 40 * gib, Used: 12 * gib, Free: 28 * gib}, nvml.SUCCESS),
		Utilization: Of(nvml.Utilization{Gpu: 87, Memory: 40}, nvml.SUCCESS),
		Temperature: Of(uint32(64), nvml.SUCCESS),
		PowerUsage:  Of(uint32(251_500), nvml.SUCCESS),
		PowerLimit:  Of(uint32(400_000), nvml.SUCCESS),
		ComputeProcesses: Of([]nvml.ProcessInfo{
			{Pid: 200, UsedGpuMemory: 4 * gib},
			{Pid: 100, UsedGpuMemory: 6 * gib},
		}, nvml.SUCCESS),
		GraphicsProcesses: Of([]nvml.ProcessInfo{{Pid: 300, UsedGpuMemory: 1 * gib}}, nvml.SUCCESS),
	}
	d := Build(r, func(pid uint32) Identity {
		switch pid {
		case 100:
			return Identity{Name: "llama-server", Managed: true}
		case 200:
			return Identity{Name: "python3"}
		}
		return Identity{}
	})

	if d.Index != 3 || d.UUID != "GPU-abc" || d.Name != "NVIDIA A100-SXM4-40GB" {
		t.Fatalf("identity = %d %q %q", d.Index, d.UUID, d.Name)
	}
	if d.MemoryTotal != 40*gib || d.MemoryUsed != 12*gib || d.MemoryFree != 28*gib {
		t.Fatalf("memory = %d/%d/%d", d.MemoryTotal, d.MemoryUsed, d.MemoryFree)
	}
	if !d.HasUtilization || d.UtilizationGPU != 87 || d.UtilizationMemory != 40 {
		t.Fatalf("utilization = %v %d %d", d.HasUtilization, d.UtilizationGPU, d.UtilizationMemory)
	}
	if !d.HasTemperature || d.TemperatureC != 64 {
		t.Fatalf("temperature = %v %d", d.HasTemperature, d.TemperatureC)
	}
	if !d.HasPower || d.PowerDrawMilliwatts != 251_500 || !d.HasPowerLimit || d.PowerLimitMilliwatts != 400_000 {
		t.Fatalf("power = %v %v %v %v", d.HasPower, d.PowerDrawMilliwatts, d.HasPowerLimit, d.PowerLimitMilliwatts)
	}
	want := []Process{
		{PID: 100, Name: "llama-server", UsedMemory: 6 * gib, MemoryKnown: true, Managed: true},
		{PID: 200, Name: "python3", UsedMemory: 4 * gib, MemoryKnown: true},
		{PID: 300, UsedMemory: 1 * gib, MemoryKnown: true},
	}
	if !reflect.DeepEqual(d.Processes, want) {
		t.Fatalf("processes = %+v, want %+v", d.Processes, want)
	}
	if d.ManagedMemory != 6*gib || d.ForeignMemory != 6*gib {
		t.Fatalf("managed/foreign = %d/%d, want 6GiB/6GiB", d.ManagedMemory, d.ForeignMemory)
	}
	if len(d.Errors) != 0 {
		t.Fatalf("errors = %v", d.Errors)
	}
}

func TestBuildUnsupportedIsAbsentNotError(t *testing.T) {
	r := Reading{
		Memory:            Of(nvml.Memory{Total: 8 * gib, Used: 1 * gib, Free: 7 * gib}, nvml.SUCCESS),
		Utilization:       Of(nvml.Utilization{}, nvml.ERROR_NOT_SUPPORTED),
		Temperature:       Of(uint32(0), nvml.ERROR_NOT_SUPPORTED),
		PowerUsage:        Of(uint32(0), nvml.ERROR_NOT_SUPPORTED),
		PowerLimit:        Of(uint32(0), nvml.ERROR_GPU_IS_LOST),
		ComputeProcesses:  Of([]nvml.ProcessInfo(nil), nvml.ERROR_NO_PERMISSION),
		GraphicsProcesses: Of([]nvml.ProcessInfo(nil), nvml.ERROR_NOT_SUPPORTED),
	}
	d := Build(r, nil)
	if d.HasUtilization || d.HasTemperature || d.HasPower || d.HasPowerLimit {
		t.Fatalf("unsupported fields reported present: %+v", d)
	}
	wantErrs := []string{"compute processes: ERROR_NO_PERMISSION", "power limit: ERROR_GPU_IS_LOST"}
	if !reflect.DeepEqual(d.Errors, wantErrs) {
		t.Fatalf("errors = %q, want %q", d.Errors, wantErrs)
	}
	// With no process list every used byte is foreign.
	if d.ManagedMemory != 0 || d.ForeignMemory != 1*gib {
		t.Fatalf("managed/foreign = %d/%d", d.ManagedMemory, d.ForeignMemory)
	}
}

func TestMergeProcessesDedupesAcrossLists(t *testing.T) {
	compute := []nvml.ProcessInfo{
		{Pid: 7, UsedGpuMemory: 500},
		{Pid: 9, UsedGpuMemory: notAvailable},
	}
	graphics := []nvml.ProcessInfo{
		{Pid: 7, UsedGpuMemory: 500},
		{Pid: 9, UsedGpuMemory: 300},
		{Pid: 2, UsedGpuMemory: notAvailable},
	}
	got := MergeProcesses(compute, graphics)
	want := []Process{
		{PID: 2},
		{PID: 7, UsedMemory: 500, MemoryKnown: true},
		{PID: 9, UsedMemory: 300, MemoryKnown: true},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestAttributeNeverNegativeAndSkipsUnknown(t *testing.T) {
	procs := []Process{
		{PID: 1, UsedMemory: 900, MemoryKnown: true, Managed: true},
		{PID: 2, Managed: true}, // unknown usage counts as nothing
		{PID: 3, UsedMemory: 50, MemoryKnown: true},
	}
	// The device total was read a moment before the processes grew.
	managed, foreign := Attribute(800, procs)
	if managed != 900 || foreign != 0 {
		t.Fatalf("managed/foreign = %d/%d, want 900/0", managed, foreign)
	}
	managed, foreign = Attribute(1000, procs)
	if managed != 900 || foreign != 100 {
		t.Fatalf("managed/foreign = %d/%d, want 900/100", managed, foreign)
	}
}

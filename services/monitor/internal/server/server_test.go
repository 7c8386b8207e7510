package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	monitorv1 "github.com/genailab/genailab/gen/monitor/v1"
	"github.com/genailab/genailab/pkg/grpcserver"
	"github.com/genailab/genailab/services/monitor/internal/dgxtest"
	"github.com/genailab/genailab/services/monitor/internal/proctest"
	"github.com/genailab/genailab/services/monitor/internal/sampler/samplertest"
	"github.com/genailab/genailab/services/monitor/internal/telemetry"
)

const gib = 1 << 30

// TestSimulatedDGXThroughGRPC drives the whole service with go-nvml's
// simulated DGX A100: eight GPUs, per-process memory, and VRAM split between
// managed engines (found by name and by PID) and a foreign program.
func TestSimulatedDGXThroughGRPC(t *testing.T) {
	llama := proctest.Start(t, "llama-server", proctest.Sleep)
	worker := proctest.Start(t, "engine-worker", proctest.Sleep) // managed by PID
	foreign := proctest.Start(t, "python3", proctest.Sleep)
	llamaPID, workerPID, foreignPID := uint32(llama.Process.Pid), uint32(worker.Process.Pid), uint32(foreign.Process.Pid)

	dgx := dgxtest.New()
	// GPU 0: llama-server 18 GiB + foreign 4 GiB + 1 GiB unlisted.
	dgx.Set(0, dgxtest.GPU{UsedBytes: 23 * gib, UtilGPU: 97, UtilMemory: 55, TemperatureC: 71,
		PowerMW: 350_500, PowerLimitMW: 400_000,
		Compute: []nvml.ProcessInfo{{Pid: llamaPID, UsedGpuMemory: 18 * gib}, {Pid: foreignPID, UsedGpuMemory: 4 * gib}}})
	// GPU 3: the PID-provided worker 6 GiB, also listed as a graphics process.
	dgx.Set(3, dgxtest.GPU{UsedBytes: 6 * gib, TemperatureC: 40, PowerMW: 90_000, PowerLimitMW: 400_000,
		Compute:  []nvml.ProcessInfo{{Pid: workerPID, UsedGpuMemory: 6 * gib}},
		Graphics: []nvml.ProcessInfo{{Pid: workerPID, UsedGpuMemory: 6 * gib}}})
	// GPU 5: only a foreign process from another PID namespace.
	dgx.Set(5, dgxtest.GPU{UsedBytes: 2 * gib, TemperatureC: 35, PowerMW: 70_000, PowerLimitMW: 400_000,
		Compute: []nvml.ProcessInfo{{Pid: 999_999_999, UsedGpuMemory: 2 * gib}}})

	h := start(t, Options{
		NVML: dgx,
		ManagedPIDs: func() []telemetry.ManagedPID {
			return []telemetry.ManagedPID{{PID: int32(workerPID), Role: "diffusion"}}
		},
		NewTicker: samplertest.NewClock().NewTicker,
	})
	ctx := context.Background()

	info, err := h.client.GetSystemInfo(ctx, &monitorv1.GetSystemInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if info.GetGpuUnavailableReason() != "" || info.GetDriverVersion() != "550.54.15" || info.GetCudaVersion() != "12.4" {
		t.Fatalf("reason %q driver %q cuda %q", info.GetGpuUnavailableReason(), info.GetDriverVersion(), info.GetCudaVersion())
	}
	if len(info.GetGpus()) != dgxtest.GPUs {
		t.Fatalf("%d GPUs, want %d", len(info.GetGpus()), dgxtest.GPUs)
	}
	uuids := map[string]bool{}
	for i, g := range info.GetGpus() {
		if g.GetIndex() != int32(i) || !strings.Contains(g.GetName(), "A100-SXM4-40GB") || g.GetMemoryTotalBytes() != 40960<<20 {
			t.Fatalf("GPU %d: %v", i, g)
		}
		uuids[g.GetUuid()] = true
	}
	if len(uuids) != dgxtest.GPUs {
		t.Fatalf("UUIDs not distinct: %v", uuids)
	}
	cpu := info.GetCpu()
	if cpu.GetLogicalCores() < 1 || cpu.GetPhysicalCores() < 1 || cpu.GetRecommendedThreads() < 1 ||
		cpu.GetRecommendedThreads() > cpu.GetPhysicalCores() {
		t.Fatalf("cpu %v", cpu)
	}
	if m := info.GetMemory(); !(m.GetTotalBytes() > m.GetAvailableBytes() && m.GetAvailableBytes() > 0) {
		t.Fatalf("memory %v", m)
	}
	if d := info.GetDisk(); d.GetPath() == "" || !(d.GetTotalBytes() > d.GetFreeBytes() && d.GetFreeBytes() > 0) {
		t.Fatalf("disk %v", d)
	}
	if info.GetHostname() == "" || info.GetOs() == "" {
		t.Fatalf("hostname %q os %q", info.GetHostname(), info.GetOs())
	}

	resp, err := h.client.GetUsage(ctx, &monitorv1.GetUsageRequest{})
	if err != nil {
		t.Fatal(err)
	}
	u := resp.GetUsage()
	if len(u.GetGpus()) != dgxtest.GPUs || u.GetTime() == nil || u.GetMemory().GetTotalBytes() == 0 {
		t.Fatalf("usage %v", u)
	}
	g0, g3, g5 := u.GetGpus()[0], u.GetGpus()[3], u.GetGpus()[5]
	if g0.GetManagedMemoryBytes() != 18*gib || g0.GetForeignMemoryBytes() != 5*gib {
		t.Fatalf("GPU0 managed %d foreign %d", g0.GetManagedMemoryBytes(), g0.GetForeignMemoryBytes())
	}
	if g0.GetUtilizationPercent() != 97 || g0.GetMemoryUtilizationPercent() != 55 || g0.GetTemperatureCelsius() != 71 ||
		g0.GetPowerDrawMilliwatts() != 350_500 || g0.GetPowerLimitMilliwatts() != 400_000 ||
		g0.GetMemoryUsedBytes() != 23*gib || g0.GetMemoryFreeBytes() != 40960<<20-23*gib {
		t.Fatalf("GPU0 %v", g0)
	}
	wantProcs := map[int32]struct {
		name    string
		managed bool
		mem     uint64
	}{
		int32(llamaPID):   {"llama-server", true, 18 * gib},
		int32(foreignPID): {"python3", false, 4 * gib},
	}
	if len(g0.GetProcesses()) != 2 {
		t.Fatalf("GPU0 processes %v", g0.GetProcesses())
	}
	for _, p := range g0.GetProcesses() {
		w := wantProcs[p.GetPid()]
		if p.GetName() != w.name || p.GetManaged() != w.managed || p.GetUsedMemoryBytes() != w.mem {
			t.Fatalf("GPU0 process %v, want %+v", p, w)
		}
	}
	if g3.GetManagedMemoryBytes() != 6*gib || g3.GetForeignMemoryBytes() != 0 || len(g3.GetProcesses()) != 1 {
		t.Fatalf("GPU3 %v", g3)
	}
	if g5.GetManagedMemoryBytes() != 0 || g5.GetForeignMemoryBytes() != 2*gib || g5.GetProcesses()[0].GetName() != "" {
		t.Fatalf("GPU5 %v", g5)
	}
	managed := map[int32]*monitorv1.ManagedProcess{}
	for _, p := range u.GetManagedProcesses() {
		managed[p.GetPid()] = p
	}
	if p := managed[int32(llamaPID)]; p == nil || p.GetName() != "llama-server" || p.GetRole() != "llm" ||
		p.GetGpuMemoryBytes() != 18*gib || p.GetRssBytes() == 0 {
		t.Fatalf("llama-server %v in %v", p, u.GetManagedProcesses())
	}
	if p := managed[int32(workerPID)]; p == nil || p.GetName() != "engine-worker" || p.GetRole() != "diffusion" ||
		p.GetGpuMemoryBytes() != 6*gib {
		t.Fatalf("worker %v in %v", p, u.GetManagedProcesses())
	}
	if managed[int32(foreignPID)] != nil {
		t.Fatal("foreign process reported as managed")
	}

	// Stopping the service shuts NVML down exactly once.
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	if dgx.Inits() != 1 || dgx.Shutdowns() != 1 {
		t.Fatalf("NVML init %d shutdown %d, want 1 and 1", dgx.Inits(), dgx.Shutdowns())
	}
}

func TestWithoutNVML(t *testing.T) {
	broken := dgxtest.New()
	broken.InitFunc = func() nvml.Return { return nvml.ERROR_DRIVER_NOT_LOADED }
	cases := []struct {
		name string
		lib  telemetry.NVMLLibrary
		want string
	}{
		{"driver not loaded", broken, "NVML not available: init: ERROR_DRIVER_NOT_LOADED"},
		{"this machine's NVML", nil, "NVML not available: "},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Real time at the minimum interval: many sampling passes.
			h := start(t, Options{NVML: c.lib})
			ctx := context.Background()
			info, err := h.client.GetSystemInfo(ctx, &monitorv1.GetSystemInfoRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if c.lib == nil && info.GetGpuUnavailableReason() == "" {
				t.Skipf("this machine has NVML (%d GPUs)", len(info.GetGpus()))
			}
			if !strings.HasPrefix(info.GetGpuUnavailableReason(), c.want) || len(info.GetGpus()) != 0 {
				t.Fatalf("reason %q gpus %d", info.GetGpuUnavailableReason(), len(info.GetGpus()))
			}
			if info.GetMemory().GetTotalBytes() == 0 || info.GetCpu().GetLogicalCores() == 0 {
				t.Fatalf("host info missing: %v", info)
			}
			stream, err := h.client.WatchUsage(ctx, &monitorv1.WatchUsageRequest{IntervalMs: 100})
			if err != nil {
				t.Fatal(err)
			}
			for range 5 {
				r, err := stream.Recv()
				if err != nil {
					t.Fatal(err)
				}
				if len(r.GetUsage().GetGpus()) != 0 || r.GetUsage().GetMemory().GetTotalBytes() == 0 {
					t.Fatalf("usage %v", r.GetUsage())
				}
			}
			if n := h.logs.Count("NVML not available"); n != 1 {
				t.Fatalf("NVML unavailability logged %d times, want once:\n%s", n, h.logs)
			}
			if n := h.logs.Count("level=ERROR"); n != 0 {
				t.Fatalf("errors logged:\n%s", h.logs)
			}
		})
	}
}

func TestWatchUsageValidatesInterval(t *testing.T) {
	clock := samplertest.NewClock()
	h := start(t, Options{NVML: dgxtest.New(), NewTicker: clock.NewTicker})
	ctx := context.Background()
	for _, ms := range []int64{-1, 1, 99, int64(2 * time.Hour / time.Millisecond)} {
		stream, err := h.client.WatchUsage(ctx, &monitorv1.WatchUsageRequest{IntervalMs: ms})
		if err == nil {
			_, err = stream.Recv()
		}
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "interval_ms") {
			t.Errorf("interval %d ms: %v, want InvalidArgument", ms, err)
		}
	}
	// 0 means 1 s: the history's sampler, which already has a value.
	stream, err := h.client.WatchUsage(ctx, &monitorv1.WatchUsageRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := stream.Recv(); err != nil || len(r.GetUsage().GetGpus()) != dgxtest.GPUs || r.GetMissed() != 0 {
		t.Fatalf("default interval: %v %v", r, err)
	}
	fams := h.scrape(t)
	if n, _ := gauge(fams, "genailab_monitor_samplers", nil); n != 1 {
		t.Fatalf("%v samplers: the 1 s watch should share the history's", n)
	}
}

func TestGetHistoryLengthAndOrder(t *testing.T) {
	clock := samplertest.NewClock()
	const capacity = 10
	h := start(t, Options{NVML: dgxtest.New(), NewTicker: clock.NewTicker, HistoryCapacity: capacity})
	ctx := context.Background()
	history := func() []*monitorv1.Usage {
		r, err := h.client.GetHistory(ctx, &monitorv1.GetHistoryRequest{})
		if err != nil {
			t.Fatal(err)
		}
		return r.GetSamples()
	}
	newest := func(s []*monitorv1.Usage) time.Time {
		if len(s) == 0 {
			return time.Time{}
		}
		return s[len(s)-1].GetTime().AsTime()
	}
	var recorded []time.Time // the time of every sample, in order
	waitFor(t, "first sample", func() bool { return len(history()) == 1 })
	recorded = append(recorded, newest(history()))
	for range 14 {
		prev := recorded[len(recorded)-1]
		if !clock.Tick(time.Second) {
			t.Fatal("no 1 s sampler running")
		}
		waitFor(t, "tick recorded", func() bool { return newest(history()).After(prev) })
		recorded = append(recorded, newest(history()))
	}

	got := history()
	if len(got) != capacity {
		t.Fatalf("history has %d samples, want %d", len(got), capacity)
	}
	for i, s := range got {
		if want := recorded[len(recorded)-capacity+i]; !s.GetTime().AsTime().Equal(want) {
			t.Fatalf("sample %d at %v, want %v (oldest first, newest kept)", i, s.GetTime().AsTime(), want)
		}
		if len(s.GetGpus()) != dgxtest.GPUs {
			t.Fatalf("sample %d has %d GPUs", i, len(s.GetGpus()))
		}
	}

	since := recorded[len(recorded)-4]
	r, err := h.client.GetHistory(ctx, &monitorv1.GetHistoryRequest{Since: timestamppb.New(since)})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.GetSamples()) != 3 || !r.GetSamples()[0].GetTime().AsTime().Equal(recorded[len(recorded)-3]) {
		t.Fatalf("since %v: %d samples", since, len(r.GetSamples()))
	}
	_, err = h.client.GetHistory(ctx, &monitorv1.GetHistoryRequest{Since: &timestamppb.Timestamp{Nanos: -1}})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("invalid since: %v", err)
	}
}

func TestMetricsOverHTTP(t *testing.T) {
	llama := proctest.Start(t, "llama-server", proctest.Sleep)
	dgx := dgxtest.New()
	for i := range dgxtest.GPUs {
		dgx.Set(i, dgxtest.GPU{UsedBytes: uint64(i+1) * gib, UtilGPU: uint32(10 * i), TemperatureC: uint32(30 + i),
			PowerMW: uint32(50_000 + 1000*i), PowerLimitMW: 400_000})
	}
	dgx.Set(7, dgxtest.GPU{UsedBytes: 8 * gib, TemperatureC: 37, PowerMW: 57_000, PowerLimitMW: 400_000,
		Compute: []nvml.ProcessInfo{{Pid: uint32(llama.Process.Pid), UsedGpuMemory: 5 * gib}}})
	h := start(t, Options{NVML: dgx, NewTicker: samplertest.NewClock().NewTicker})

	var fams = h.scrape(t)
	waitFor(t, "first snapshot in /metrics", func() bool {
		fams = h.scrape(t)
		_, n := gauge(fams, "DCGM_FI_DEV_FB_USED", nil)
		return n == dgxtest.GPUs
	})
	for i := range dgxtest.GPUs {
		l := map[string]string{"gpu": strconv.Itoa(i), "device": "nvidia" + strconv.Itoa(i)}
		used, _ := gauge(fams, "DCGM_FI_DEV_FB_USED", l)
		free, _ := gauge(fams, "DCGM_FI_DEV_FB_FREE", l)
		temp, _ := gauge(fams, "DCGM_FI_DEV_GPU_TEMP", l)
		power, _ := gauge(fams, "DCGM_FI_DEV_POWER_USAGE", l)
		wantUsed := float64((i + 1) * 1024)
		if used != wantUsed || free != 40960-wantUsed || temp != float64(30+i) || power != float64(50+i) {
			t.Errorf("GPU %d: used %v free %v temp %v power %v", i, used, free, temp, power)
		}
	}
	if v, _ := gauge(fams, "DCGM_FI_DEV_GPU_UTIL", map[string]string{"gpu": "3"}); v != 30 {
		t.Errorf("GPU 3 util %v", v)
	}
	if v, _ := gauge(fams, "genailab_gpu_managed_memory_bytes", map[string]string{"gpu": "7"}); v != 5*gib {
		t.Errorf("GPU 7 managed %v", v)
	}
	if v, _ := gauge(fams, "genailab_gpu_foreign_memory_bytes", map[string]string{"gpu": "7"}); v != 3*gib {
		t.Errorf("GPU 7 foreign %v", v)
	}
	// By name and role, no pid label (unbounded).
	llm := map[string]string{"name": "llama-server", "role": "llm"}
	if v, n := gauge(fams, "genailab_managed_process_gpu_memory_bytes", llm); n != 1 || v != 5*gib {
		t.Errorf("llama-server VRAM %v (%d series)", v, n)
	}
	if v, n := gauge(fams, "genailab_managed_process_resident_memory_bytes", llm); n != 1 || v <= 0 {
		t.Errorf("llama-server RSS %v (%d series)", v, n)
	}
	// The GPU's memory by role, with its dcgm labels.
	if v, n := gauge(fams, "genailab_gpu_memory_by_role_bytes", map[string]string{"gpu": "7", "role": "llm"}); n != 1 || v != 5*gib {
		t.Errorf("GPU 7 LLM memory %v (%d series)", v, n)
	}
	if v, n := gauge(fams, "genailab_gpu_memory_by_role_bytes", map[string]string{"gpu": "7", "role": "foreign"}); n != 1 || v != 3*gib {
		t.Errorf("GPU 7 foreign memory %v (%d series)", v, n)
	}
	if v, _ := gauge(fams, "genailab_host_memory_total_bytes", nil); v <= 0 {
		t.Errorf("memory total %v", v)
	}
	if v, _ := gauge(fams, "genailab_gpu_telemetry_available", nil); v != 1 {
		t.Errorf("telemetry available %v", v)
	}
}

func TestRunRefusesRemoteMetrics(t *testing.T) {
	err := Run(context.Background(), Options{GRPC: grpcserver.Flags{Addr: "127.0.0.1:0"}, MetricsAddr: "0.0.0.0:0", NVML: dgxtest.New()})
	if !errors.Is(err, ErrRemoteMetrics) {
		t.Fatalf("got %v, want ErrRemoteMetrics", err)
	}
}

// TestShutdownEndsOpenStreams: cancelling Run ends open WatchUsage streams
// at once (Unavailable), instead of waiting out the graceful-stop period.
func TestShutdownEndsOpenStreams(t *testing.T) {
	dgx := dgxtest.New()
	h := start(t, Options{NVML: dgx, NewTicker: samplertest.NewClock().NewTicker})
	stream, err := h.client.WatchUsage(context.Background(), &monitorv1.WatchUsageRequest{IntervalMs: 250})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(begin); d > 3*time.Second {
		t.Fatalf("shutdown took %v with a stream open", d)
	}
	if _, err := stream.Recv(); status.Code(err) != codes.Unavailable {
		t.Fatalf("open stream after shutdown: %v, want Unavailable", err)
	}
	if dgx.Shutdowns() != 1 {
		t.Fatalf("NVML shut down %d times", dgx.Shutdowns())
	}
}

// TestManagedPIDDirExcludesOtherUsersEngines: with a pid dir, an sd-cli
// that does not descend from a process listed there (another user's) is
// foreign, while the listed process itself (and its descendants) is managed.
func TestManagedPIDDirExcludesOtherUsersEngines(t *testing.T) {
	llama := proctest.Start(t, "llama-server", proctest.Sleep)
	otherSD := proctest.Start(t, "sd-cli", proctest.Sleep) // not llama-server's descendant
	llamaPID, otherPID := uint32(llama.Process.Pid), uint32(otherSD.Process.Pid)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "llm.pid"), fmt.Appendf(nil, `{"name":"llm","pid":%d}`+"\n", llamaPID), 0o600); err != nil {
		t.Fatal(err)
	}
	dgx := dgxtest.New()
	dgx.Set(0, dgxtest.GPU{UsedBytes: 3 * gib, PowerLimitMW: 400_000,
		Compute: []nvml.ProcessInfo{{Pid: llamaPID, UsedGpuMemory: 2 * gib}, {Pid: otherPID, UsedGpuMemory: gib}}})
	h := start(t, Options{NVML: dgx, ManagedPIDDir: dir, NewTicker: samplertest.NewClock().NewTicker})
	resp, err := h.client.GetUsage(context.Background(), &monitorv1.GetUsageRequest{})
	if err != nil {
		t.Fatal(err)
	}
	u := resp.GetUsage()
	if g0 := u.GetGpus()[0]; g0.GetManagedMemoryBytes() != 2*gib || g0.GetForeignMemoryBytes() != gib {
		t.Fatalf("GPU0 managed %d foreign %d", g0.GetManagedMemoryBytes(), g0.GetForeignMemoryBytes())
	}
	for _, p := range u.GetManagedProcesses() {
		if p.GetPid() == int32(otherPID) {
			t.Fatalf("another user's sd-cli reported as managed: %v", u.GetManagedProcesses())
		}
	}
}

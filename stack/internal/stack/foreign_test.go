package stack_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	commonv1 "github.com/genailab/genailab/gen/common/v1"
	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	monitorv1 "github.com/genailab/genailab/gen/monitor/v1"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/pkg/ggufgen"
	"github.com/genailab/genailab/pkg/llamabin"
	"github.com/genailab/genailab/pkg/ports"
	"github.com/genailab/genailab/pkg/testenv"
	"github.com/genailab/genailab/stack/internal/stack"
)

// TestForeignLlamaServerIsNotTheStacksEngine (issue 15, edge 1): a second llama-server on
// the machine — not started by the stack's services, here by the test itself, with the tiny
// model — is "used by other processes": the monitor's list of the stack's engines keeps the
// same processes, and the orchestrator's offload decision is made from the same engines'
// memory (the decision's "used by the engines" is unchanged; by name alone it grew by the
// foreign process's memory, "125 MiB used by the engines" when the stack's used 26 MiB).
func TestForeignLlamaServerIsNotTheStacksEngine(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts every service")
	}
	llama := testenv.RequireLlamaServer(t)
	sd := testenv.RequireRealSD(t)
	// A budget makes the decision count the engines' memory (and say it); far above what
	// the tiny models use, so that no image here needs an offload.
	t.Setenv("GENAILAB_ORCHESTRATOR_BUDGET_BYTES", strconv.FormatUint(16<<30, 10))
	bin := buildServices(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	data := t.TempDir()
	llmModel, err := stack.EnsureTinyModel(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	model, source, err := stack.EnsureDiffusionModel(ctx, data, "", sd.Model)
	if err != nil {
		t.Fatal(err)
	}
	choice := stack.ChooseDiffusion(stack.DiffusionFacts{SDCLI: sd.CLI, SDServer: sd.Server, Source: "test", Model: model, ModelSource: source})
	logs := &syncWriter{w: &bytes.Buffer{}}
	s, err := stack.Start(ctx, stack.Options{DataDir: data, BinDir: bin, Ephemeral: true, LlamaServer: llama, LLMModel: llmModel, Diffusion: choice, LogOutput: logs})
	if err != nil {
		t.Fatalf("start stack: %v\n%s", err, logs.String())
	}
	t.Cleanup(func() { s.Stop(context.Background()) })
	conn := func(name string) *grpc.ClientConn {
		cc, err := grpc.NewClient(s.Addr(name), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cc.Close() })
		return cc
	}
	mon := monitorv1.NewMonitorServiceClient(conn("monitor"))
	orch := orchestratorv1.NewOrchestratorServiceClient(conn("orchestrator"))
	llm := llmv1.NewLLMServiceClient(conn("llm"))

	// The stack's LLM is up and the monitor counts it as the stack's.
	var stackLLM int32
	for {
		r, err := llm.GetInfo(ctx, &llmv1.GetInfoRequest{})
		if err != nil {
			t.Fatalf("the stack's LLM never ran: %v\n%s", err, logs.String())
		}
		if r.GetInfo().GetStatus() == commonv1.ServerStatus_SERVER_STATUS_RUNNING {
			stackLLM = r.GetInfo().GetPid()
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	before := usageAfter(t, ctx, mon, time.Now())
	if !slices.Contains(managedPIDs(before), stackLLM) {
		t.Fatalf("the stack's llama-server (pid %d) is not among the managed processes %v", stackLLM, before.GetManagedProcesses())
	}
	decision := func() (*orchestratorv1.WouldNeedOffloadResponse, float64) {
		t.Helper()
		d, err := orch.WouldNeedOffload(ctx, &orchestratorv1.WouldNeedOffloadRequest{})
		if err != nil {
			t.Fatal(err)
		}
		m := usedByEngines.FindStringSubmatch(d.GetExplanation())
		if m == nil {
			t.Fatalf("the decision does not say what the engines use: %q", d.GetExplanation())
		}
		return d, mib(t, m[1], m[2])
	}
	d0, engines0 := decision()

	// A foreign llama-server: this test's child, with its own copy of the tiny model.
	gguf := filepath.Join(t.TempDir(), "foreign.gguf")
	if err := ggufgen.WriteFile(gguf, ggufgen.DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	port, err := ports.Free("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	foreign := exec.Command(llama, "-m", gguf, "--host", "127.0.0.1", "--port", strconv.Itoa(port), "-t", "1", "-c", "256", "--log-colors", "off")
	foreign.Env = llamabin.Env(os.Environ())
	foreign.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := foreign.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-foreign.Process.Pid, syscall.SIGKILL); _ = foreign.Wait() })
	waitHealthy(t, ctx, "http://127.0.0.1:"+strconv.Itoa(port)+"/health")
	foreignRSS := rssOf(t, foreign.Process.Pid)
	if foreignRSS < 4<<20 {
		t.Fatalf("the foreign llama-server holds only %d bytes: too little to tell", foreignRSS)
	}

	// A reading taken after the foreign llama-server holds its memory.
	after := usageAfter(t, ctx, mon, time.Now())
	if got, want := managedPIDs(after), managedPIDs(before); !slices.Equal(got, want) || slices.Contains(got, int32(foreign.Process.Pid)) {
		t.Fatalf("managed processes %v after a foreign llama-server (pid %d) started, %v before", after.GetManagedProcesses(), foreign.Process.Pid, before.GetManagedProcesses())
	}
	d1, engines1 := decision()
	if d1.GetNeedsOffload() != d0.GetNeedsOffload() || d1.GetLlmReleaseBytes() != d0.GetLlmReleaseBytes() {
		t.Fatalf("the decision changed with a foreign llama-server:\nbefore %v\nafter  %v", d0, d1)
	}
	// The engines' own memory moves a little between readings; the foreign process's would
	// move it by all of its resident memory.
	if diff := engines1 - engines0; diff > float64(foreignRSS)/2/(1<<20) || -diff > float64(foreignRSS)/2/(1<<20) {
		t.Fatalf("the engines use %.0f MiB with a foreign llama-server of %d MiB, %.0f MiB before:\n%s\n%s",
			engines1, foreignRSS>>20, engines0, d0.GetExplanation(), d1.GetExplanation())
	}
}

var usedByEngines = regexp.MustCompile(`with ([0-9.]+) (B|KiB|MiB|GiB) used by the engines`)

// mib reads one of decide.Bytes' figures in MiB.
func mib(t *testing.T, v, unit string) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		t.Fatal(err)
	}
	switch unit {
	case "B":
		return f / (1 << 20)
	case "KiB":
		return f / (1 << 10)
	case "GiB":
		return f * (1 << 10)
	}
	return f
}

// usageAfter returns the monitor's first reading sampled after at.
func usageAfter(t *testing.T, ctx context.Context, mon monitorv1.MonitorServiceClient, at time.Time) *monitorv1.Usage {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	stream, err := mon.WatchUsage(wctx, &monitorv1.WatchUsageRequest{IntervalMs: 200})
	if err != nil {
		t.Fatal(err)
	}
	for {
		m, err := stream.Recv()
		if err != nil {
			t.Fatalf("no usage reading after %v: %v", at, err)
		}
		if u := m.GetUsage(); u.GetTime().AsTime().After(at) {
			return u
		}
	}
}

func managedPIDs(u *monitorv1.Usage) []int32 {
	var out []int32
	for _, p := range u.GetManagedProcesses() {
		out = append(out, p.GetPid())
	}
	slices.Sort(out)
	return out
}

// waitHealthy waits for llama-server's /health to answer 200 (its model is loaded).
func waitHealthy(t *testing.T, ctx context.Context, url string) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	for ctx.Err() == nil {
		if resp, err := client.Get(url); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s never answered 200", url)
}

// rssOf is a process's resident memory, from /proc/PID/status.
func rssOf(t *testing.T, pid int) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmRSS for pid %d", pid)
	return 0
}

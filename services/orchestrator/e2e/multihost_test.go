package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/pkg/auth"
	"github.com/genailab/genailab/pkg/ggufgen"
	"github.com/genailab/genailab/pkg/modelstore"
	"github.com/genailab/genailab/pkg/testenv"
)

// The multi-host tests make real hosts on this machine: one network namespace per host
// (ip netns, a veth pair to the root namespace, its own 10.250.x.y address), each running
// the LLM service with a real llama-server, the diffusion service with the real
// stable-diffusion.cpp (sd-cli, the tiny model) and the monitor, bound to the namespace's address with a token. The orchestrator runs in the
// root namespace. They need root and iproute2; elsewhere they skip.

const labToken = "multi-host-lab-token"

type labHost struct {
	name, ns, ip, dir string
	// veth is the root namespace's end of the host's link.
	veth  string
	procs []*proc
}

func (h *labHost) addr(port int) string { return fmt.Sprintf("%s:%d", h.ip, port) }

// needNetns skips unless the real engines are here (testenv's policy) and namespaces can be
// made here.
func needNetns(t *testing.T) {
	t.Helper()
	testenv.Need(t, testenv.RequireLlamaEnv, llamaErr)
	testenv.Need(t, testenv.RequireSDCPPEnv, realSDErr)
	if os.Geteuid() != 0 {
		t.Skip("multi-host tests need root to create network namespaces (ip netns); CI runs them as root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("multi-host tests need iproute2 (apt-get install -y iproute2): " + err.Error())
	}
}

func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// makeHosts creates n namespaces with their links; the cleanup deletes them (after the
// processes in them are stopped: cleanups run last-in first-out). Each host's store has the
// tiny LLM model, and the tiny diffusion model when its name is in withSD.
func makeHosts(t *testing.T, withSD map[string]bool, names ...string) []*labHost {
	t.Helper()
	tag := fmt.Sprintf("gl%d", os.Getpid()%100000)
	net := 1 + os.Getpid()%250
	probe := tag + "probe"
	if out, err := exec.Command("ip", "netns", "add", probe).CombinedOutput(); err != nil {
		t.Skipf("cannot create network namespaces here (%v: %s)", err, strings.TrimSpace(string(out)))
	}
	_ = exec.Command("ip", "netns", "del", probe).Run()
	var out []*labHost
	for i, name := range names {
		veth := fmt.Sprintf("%sv%d", tag, i)
		h := &labHost{name: name, ns: fmt.Sprintf("%sh%d", tag, i), ip: fmt.Sprintf("10.250.%d.%d", net, 4*i+2), veth: veth}
		ipCmd(t, "netns", "add", h.ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", h.ns).Run() })
		ipCmd(t, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", h.ns)
		ipCmd(t, "addr", "add", fmt.Sprintf("10.250.%d.%d/30", net, 4*i+1), "dev", veth)
		ipCmd(t, "link", "set", veth, "up")
		ipCmd(t, "-n", h.ns, "addr", "add", h.ip+"/30", "dev", "eth0")
		ipCmd(t, "-n", h.ns, "link", "set", "eth0", "up")
		ipCmd(t, "-n", h.ns, "link", "set", "lo", "up")
		dir, err := os.MkdirTemp("", "genailab-lab-"+name+"-")
		if err != nil {
			t.Fatal(err)
		}
		h.dir = dir
		t.Cleanup(func() { os.RemoveAll(dir) })
		store, err := modelstore.Open(modelstore.Options{DataDir: filepath.Join(dir, "data"), Type: modelstore.TypeLLM})
		if err != nil {
			t.Fatal(err)
		}
		src := filepath.Join(dir, "tiny.gguf")
		if err := ggufgen.WriteFile(src, ggufgen.DefaultConfig()); err != nil {
			t.Fatal(err)
		}
		if _, err := store.Import(context.Background(), tinyModel, "tiny", src); err != nil {
			t.Fatal(err)
		}
		if withSD[name] {
			importTinySD(t, filepath.Join(dir, "data"))
		}
		out = append(out, h)
	}
	return out
}

// startIn starts a binary inside the host's namespace (ip netns exec execs it in place,
// so the process is the service itself, in its own process group).
func startIn(t *testing.T, h *labHost, name string, env []string, addrFile string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", h.ns, filepath.Join(binDir, name)}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p := &proc{name: h.name + "/" + name, cmd: cmd, log: &bytes.Buffer{}, mu: &sync.Mutex{}, done: make(chan struct{})}
	cmd.Stdout = lockedWriter{p.mu, p.log}
	cmd.Stderr = lockedWriter{p.mu, p.log}
	_ = os.Remove(addrFile)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s in %s: %v", name, h.ns, err)
	}
	go func() { _ = cmd.Wait(); close(p.done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, err := os.ReadFile(addrFile); err == nil && len(b) > 0 {
			return p
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited during start:\n%s", p.name, p.logs())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not start:\n%s", p.name, p.logs())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startAgents starts the host's three services on its address, with the token; its diffusion
// service runs the real sd-cli.
func startAgents(t *testing.T, h *labHost) {
	t.Helper()
	data := filepath.Join(h.dir, "data")
	af := func(n string) string { return filepath.Join(h.dir, n+".addr") }
	h.procs = []*proc{
		startIn(t, h, "genailab-monitor", nil, af("monitor"),
			"-grpc-addr", h.addr(50053), "-addr-file", af("monitor"), "-metrics-addr", "off", "-data-dir", data, "-token", labToken),
		startIn(t, h, "genailab-llm", nil, af("llm"),
			"-grpc-addr", h.addr(50051), "-addr-file", af("llm"), "-data-dir", data, "-llama-server", llamaServer, "-token", labToken),
		startIn(t, h, "genailab-diffusion", nil, af("diffusion"),
			"-grpc-addr", h.addr(50052), "-addr-file", af("diffusion"), "-http-addr", "off", "-data-dir", data,
			"-sd-cli", realSD.CLI, "-sd-server", realSD.Server, "-temp-dir", h.dir, "-token", labToken),
	}
	t.Cleanup(func() { h.stop(false) })
}

// stop ends the host's processes: SIGKILL of each process group (a crash), or SIGTERM.
func (h *labHost) stop(crash bool) {
	for _, p := range h.procs {
		if crash {
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		} else {
			p.stop()
		}
	}
}

func (h *labHost) logs() string {
	var b strings.Builder
	for _, p := range h.procs {
		fmt.Fprintf(&b, "---- %s ----\n%s\n", p.name, tail(p.logs(), 3000))
	}
	return b.String()
}

func dialToken(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(auth.TokenCredentials{Token: labToken}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true)); err != nil {
		t.Fatalf("health of %s: %v", addr, err)
	}
	return cc
}

func hostsByName(t *testing.T, orch orchestratorv1.OrchestratorServiceClient) map[string]*orchestratorv1.Host {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := orch.ListHosts(ctx, &orchestratorv1.ListHostsRequest{})
	if err != nil {
		t.Fatalf("ListHosts: %v", err)
	}
	m := map[string]*orchestratorv1.Host{}
	for _, h := range r.GetHosts() {
		m[h.GetName()] = h
	}
	return m
}

func waitFor(t *testing.T, what string, within time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestMultiHostPlacementFailoverAndRecovery: three hosts — a (budget 1 byte: every image
// needs an offload there), b (room for the image), c (no diffusion model). The first image
// goes to b without offload; with b drained the next goes to a (offload); a's processes are
// killed mid-generation and, b undrained, the job finishes on b; a comes back, becomes ready
// and gets its LLM reloaded from the state saved for it. Then b's link goes down during an
// image: the job finishes on a, and b is ready again once its link is back.
func TestMultiHostPlacementFailoverAndRecovery(t *testing.T) {
	needNetns(t)
	start := time.Now()
	lab := makeHosts(t, map[string]bool{"a": true, "b": true}, "a", "b", "c")
	a, b, c := lab[0], lab[1], lab[2]
	for _, h := range lab {
		startAgents(t, h)
	}
	// Generous: three hosts' engines share this machine's cores.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Second)
	defer cancel()
	startEngines := func(h *labHost, diffusion bool) {
		llm := llmv1.NewLLMServiceClient(dialToken(t, h.addr(50051)))
		if _, err := llm.Start(ctx, &llmv1.StartRequest{Config: &llmv1.LLMConfig{ModelId: tinyModel, ContextSize: 256, Threads: llmThreads}}); err != nil {
			t.Fatalf("start the LLM on %s: %v\n%s", h.name, err, h.logs())
		}
		if diffusion {
			d := diffusionv1.NewDiffusionServiceClient(dialToken(t, h.addr(50052)))
			if _, err := d.Start(ctx, &diffusionv1.StartRequest{Config: diffusionConfig(false, 0)}); err != nil {
				t.Fatalf("start diffusion on %s: %v", h.name, err)
			}
		}
	}
	startEngines(a, true)
	startEngines(b, true)
	startEngines(c, false) // c has no diffusion model (none in its store, no engine started)

	spec := func(h *labHost, extra string) string {
		return fmt.Sprintf("%s=%s,%s,%s%s", h.name, h.addr(50051), h.addr(50052), h.addr(50053), extra)
	}
	odir := t.TempDir()
	af := filepath.Join(odir, "orch.addr")
	cmd := exec.Command(filepath.Join(binDir, "genailab-orchestrator"), "-grpc-addr", "127.0.0.1:0", "-addr-file", af, "-data-dir", odir,
		"-token", labToken, "-hosts", spec(a, ",budget=1")+";"+spec(b, "")+";"+spec(c, ""), "-diffusion-model", tinySD,
		"-host-check-interval", "300ms", "-reload-backoff", "100ms", "-reload-backoff-max", "500ms", "-reload-timeout", "90s",
		"-free-timeout", "5s", "-drain-timeout", "2s", "-agent-keepalive-timeout", "1s")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	op := &proc{name: "orchestrator", cmd: cmd, log: &bytes.Buffer{}, mu: &sync.Mutex{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = lockedWriter{op.mu, op.log}, lockedWriter{op.mu, op.log}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait(); close(op.done) }()
	t.Cleanup(func() {
		op.stop()
		if t.Failed() {
			t.Logf("---- orchestrator ----\n%s", tail(op.logs(), 8000))
			for _, h := range lab {
				t.Log(h.logs())
			}
		}
	})
	waitFor(t, "the orchestrator's address", 30*time.Second, func() bool { b, _ := os.ReadFile(af); return len(b) > 0 })
	oaddr, _ := os.ReadFile(af)
	orch := orchestratorv1.NewOrchestratorServiceClient(dialToken(t, strings.TrimSpace(string(oaddr))))

	waitFor(t, "three ready hosts", 20*time.Second, func() bool {
		hs := hostsByName(t, orch)
		for _, n := range []string{"a", "b", "c"} {
			if hs[n].GetState() != orchestratorv1.HostState_HOST_STATE_READY || !hs[n].GetLlmRunning() {
				return false
			}
		}
		return hs["b"].GetDiffusionModel() == tinySD
	})

	// 1. Placement: b fits without offload.
	params := &diffusionv1.ImageParams{Prompt: "a lab", Width: proto.Int32(128), Height: proto.Int32(128), Steps: proto.Int32(4)}
	res, err := orch.CreateImage(ctx, &orchestratorv1.CreateImageRequest{Prompt: "a lab", Width: proto.Int32(128), Height: proto.Int32(128), Steps: proto.Int32(4)})
	if err != nil || len(res.GetImage()) == 0 {
		t.Fatalf("first image: %v", err)
	}
	jl, err := orch.ListJobs(ctx, &orchestratorv1.ListJobsRequest{PageSize: 1})
	if err != nil || len(jl.GetJobs()) != 1 || jl.GetJobs()[0].GetHost() != "b" || jl.GetJobs()[0].GetOffloaded() {
		t.Fatalf("first image ran on %q (offloaded %v), want b without offload: %v", jl.GetJobs()[0].GetHost(), jl.GetJobs()[0].GetOffloaded(), err)
	}
	placed := eventsOf(t, orch, jl.GetJobs()[0].GetId(), orchestratorv1.EventType_EVENT_TYPE_JOB_PLACED)
	if len(placed) == 0 || !strings.Contains(placed[0].GetMessage(), "Placed on b") || !strings.Contains(placed[0].GetMessage(), "without any offload") {
		t.Fatalf("placement not explained: %v", placed)
	}

	// 2. Drain b: the next image goes to a (with an offload there: its budget is 1 byte).
	if _, err := orch.DrainHost(ctx, &orchestratorv1.DrainHostRequest{Name: "b"}); err != nil {
		t.Fatal(err)
	}
	if st := hostsByName(t, orch)["b"].GetState(); st != orchestratorv1.HostState_HOST_STATE_DRAINING {
		t.Fatalf("b is %s after DrainHost", st)
	}
	// A longer real job: a is killed once step 2 is seen, with 22 steps (seconds) to go. The job
	// then runs again, whole, on b.
	params.Steps = proto.Int32(24)
	sub, err := orch.SubmitJob(ctx, &orchestratorv1.SubmitJobRequest{Params: params})
	if err != nil {
		t.Fatal(err)
	}
	id := sub.GetJob().GetId()
	w, err := orch.WatchJob(ctx, &orchestratorv1.WatchJobRequest{Id: id})
	if err != nil {
		t.Fatal(err)
	}
	var sawProgressOnA bool
	for !sawProgressOnA {
		m, err := w.Recv()
		if err != nil {
			t.Fatalf("watch job: %v", err)
		}
		sawProgressOnA = m.GetJob().GetHost() == "a" && m.GetJob().GetProgress().GetStep() >= 2
	}
	if st, err := orch.GetSavedState(ctx, &orchestratorv1.GetSavedStateRequest{Host: "a"}); err != nil || len(st.GetStates()) != 1 {
		t.Fatalf("no LLM state saved for a during its offload: %v %v", st, err)
	}

	// 3. a dies mid-generation; b takes images again: the job finishes on b.
	if _, err := orch.UndrainHost(ctx, &orchestratorv1.UndrainHostRequest{Name: "b"}); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	a.stop(true)
	var final *orchestratorv1.Job
	for {
		m, err := w.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("watch job after the kill: %v", err)
		}
		final = m.GetJob()
	}
	if final.GetStatus() != orchestratorv1.JobStatus_JOB_STATUS_SUCCEEDED || final.GetHost() != "b" || final.GetResult().GetWidth() != 128 {
		t.Fatalf("job after a died: status %s on %q, error %q", final.GetStatus(), final.GetHost(), final.GetError())
	}
	t.Logf("failover: the job finished on b %v after a was killed", time.Since(killedAt).Round(time.Millisecond))
	if g, err := orch.GetJob(ctx, &orchestratorv1.GetJobRequest{Id: id, IncludeImage: true}); err != nil || len(g.GetJob().GetResult().GetPng()) == 0 {
		t.Fatalf("stored image of the failed-over job: %v", err)
	}
	placed = eventsOf(t, orch, id, orchestratorv1.EventType_EVENT_TYPE_JOB_PLACED)
	var retried bool
	for _, e := range placed {
		retried = retried || (e.GetHost() == "b" && strings.Contains(e.GetMessage(), "Attempt 2"))
	}
	if !retried {
		t.Fatalf("no second placement on b in the events: %v", placed)
	}
	waitFor(t, "a unreachable", 10*time.Second, func() bool {
		return hostsByName(t, orch)["a"].GetState() == orchestratorv1.HostState_HOST_STATE_UNREACHABLE
	})
	if st, _ := orch.GetSavedState(ctx, &orchestratorv1.GetSavedStateRequest{Host: "a"}); len(st.GetStates()) != 1 {
		t.Fatal("a's saved LLM state was lost while a is down")
	}

	// 4. a comes back: ready again, its LLM reloaded from the saved state.
	startAgents(t, a)
	waitFor(t, "a ready with its LLM back", 60*time.Second, func() bool {
		h := hostsByName(t, orch)["a"]
		return h.GetState() == orchestratorv1.HostState_HOST_STATE_READY && !h.GetLlmOffloaded() && h.GetLlmRunning()
	})
	info, err := llmv1.NewLLMServiceClient(dialToken(t, a.addr(50051))).GetInfo(ctx, &llmv1.GetInfoRequest{})
	if err != nil || info.GetInfo().GetModelId() != tinyModel {
		t.Fatalf("a's LLM after its return: %v %v", info, err)
	}

	// 5. b's link goes down mid-generation (its processes keep running): the stream to b
	// fails once the orchestrator's unacknowledged traffic to b passes the keepalive
	// timeout (1 s here), and the job finishes on a. The link back up, b is ready again.
	d := diffusionv1.NewDiffusionServiceClient(dialToken(t, a.addr(50052)))
	if _, err := d.Start(ctx, &diffusionv1.StartRequest{Config: diffusionConfig(false, 0)}); err != nil {
		t.Fatalf("start diffusion on a: %v", err)
	}
	waitFor(t, "a's diffusion engine seen", 10*time.Second, func() bool { return hostsByName(t, orch)["a"].GetDiffusionModel() == tinySD })
	params.Steps = proto.Int32(12) // the link goes down at step 2, with 10 steps to go
	sub, err = orch.SubmitJob(ctx, &orchestratorv1.SubmitJobRequest{Params: params})
	if err != nil {
		t.Fatal(err)
	}
	id = sub.GetJob().GetId()
	if w, err = orch.WatchJob(ctx, &orchestratorv1.WatchJobRequest{Id: id}); err != nil {
		t.Fatal(err)
	}
	for sawProgressOnB := false; !sawProgressOnB; {
		m, err := w.Recv()
		if err != nil {
			t.Fatalf("watch job: %v", err)
		}
		if j := m.GetJob(); j.GetStatus() == orchestratorv1.JobStatus_JOB_STATUS_SUCCEEDED || j.GetStatus() == orchestratorv1.JobStatus_JOB_STATUS_FAILED {
			t.Fatalf("job ended (%s on %q) before its progress on b was seen", j.GetStatus(), j.GetHost())
		}
		sawProgressOnB = m.GetJob().GetHost() == "b" && m.GetJob().GetProgress().GetStep() >= 2
	}
	downAt := time.Now()
	ipCmd(t, "link", "set", b.veth, "down")
	t.Cleanup(func() { _ = exec.Command("ip", "link", "set", b.veth, "up").Run() })
	// Without the keepalive the stream would wait for TCP's retransmissions (~15 min).
	// The limit leaves room for a's offload and its whole real job after the failover.
	wctx, wcancel := context.WithTimeout(ctx, 120*time.Second)
	defer wcancel()
	if w, err = orch.WatchJob(wctx, &orchestratorv1.WatchJobRequest{Id: id}); err != nil {
		t.Fatal(err)
	}
	for final = nil; ; {
		m, err := w.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("watch job after b's link went down (%v later): %v", time.Since(downAt).Round(time.Millisecond), err)
		}
		final = m.GetJob()
	}
	if final.GetStatus() != orchestratorv1.JobStatus_JOB_STATUS_SUCCEEDED || final.GetHost() != "a" {
		t.Fatalf("job after b's link went down: status %s on %q, error %q", final.GetStatus(), final.GetHost(), final.GetError())
	}
	t.Logf("link down: the job finished on a %v after b's link went down", time.Since(downAt).Round(time.Millisecond))
	if st := hostsByName(t, orch)["b"]; st.GetState() != orchestratorv1.HostState_HOST_STATE_UNREACHABLE {
		t.Fatalf("b is %s (%s) with its link down", st.GetState(), st.GetStateReason())
	}
	upAt := time.Now()
	ipCmd(t, "link", "set", b.veth, "up")
	waitFor(t, "b ready after its link came back", 30*time.Second, func() bool {
		return hostsByName(t, orch)["b"].GetState() == orchestratorv1.HostState_HOST_STATE_READY
	})
	t.Logf("link up: b ready again %v later", time.Since(upAt).Round(time.Millisecond))

	// 6. Refusals across hosts: no token, wrong token.
	bare, err := grpc.NewClient(b.addr(50052), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer bare.Close()
	if _, err := diffusionv1.NewDiffusionServiceClient(bare).GetInfo(ctx, &diffusionv1.GetInfoRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("host b without a token: %v, want Unauthenticated", err)
	}
	wrong, err := grpc.NewClient(strings.TrimSpace(string(oaddr)), grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(auth.TokenCredentials{Token: "wrong"}))
	if err != nil {
		t.Fatal(err)
	}
	defer wrong.Close()
	if _, err := orchestratorv1.NewOrchestratorServiceClient(wrong).ListHosts(ctx, &orchestratorv1.ListHostsRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("orchestrator with a wrong token: %v, want Unauthenticated", err)
	}
	if _, err := orch.SubmitJob(ctx, &orchestratorv1.SubmitJobRequest{Params: params, Host: "zz"}); status.Code(err) != codes.NotFound {
		t.Errorf("pin to an unknown host: %v, want NotFound", err)
	}
	t.Logf("multi-host test body took %v", time.Since(start).Round(time.Millisecond))
}

// eventsOf returns a job's stored events of one type.
func eventsOf(t *testing.T, orch orchestratorv1.OrchestratorServiceClient, job string, typ orchestratorv1.EventType) []*orchestratorv1.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := orch.WatchEvents(ctx, &orchestratorv1.WatchEventsRequest{Backlog: 1000, Types: []orchestratorv1.EventType{typ}})
	if err != nil {
		t.Fatal(err)
	}
	var out []*orchestratorv1.Event
	for {
		m, err := s.Recv()
		if err != nil {
			return out
		}
		if m.GetEvent().GetJobId() == job {
			out = append(out, m.GetEvent())
		}
	}
}

package containere2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/genailab/genailab/pkg/ggufgen"
	"github.com/genailab/genailab/pkg/modelstore"
	"github.com/genailab/genailab/pkg/testenv"
)

// RequireDockerEnv=1 makes a missing Docker engine, Compose or image a failure (CI sets it).
const RequireDockerEnv = "GENAILAB_REQUIRE_DOCKER"

const (
	uid       = 65532
	tinyModel = "tiny-e2e"
	tinySD    = "tinysd"
	apiToken  = "container-e2e-api-token"
	labToken  = "container-e2e-lab-token"
)

// lab is one compose project of the test.
type lab struct {
	t       *testing.T
	compose []string // the compose command with its project, env file and file
	gateway string   // http://127.0.0.1:PORT
	client  *http.Client
}

// needDocker finds the docker CLI with an engine that answers, and Compose.
func needDocker(t *testing.T) (composeCmd []string) {
	t.Helper()
	missing := func(format string, args ...any) {
		testenv.Need(t, RequireDockerEnv, fmt.Errorf("%w: "+format, append([]any{testenv.ErrMissing}, args...)...))
	}
	if _, err := exec.LookPath("docker"); err != nil {
		missing("no docker CLI (apt-get install -y docker.io)")
	}
	if out, err := exec.Command("docker", "version", "--format", "{{.Server.Version}}").CombinedOutput(); err != nil {
		missing("no Docker engine answers (scripts/dockerd.sh start, DOCKER_HOST): %s", strings.TrimSpace(string(out)))
	}
	if exec.Command("docker", "compose", "version").Run() == nil {
		composeCmd = []string{"docker", "compose"}
	} else if _, err := exec.LookPath("docker-compose"); err == nil {
		composeCmd = []string{"docker-compose"}
	} else {
		missing("no Docker Compose (apt-get install -y docker-compose)")
	}
	if os.Geteuid() != 0 {
		missing("the container test runs as root (it gives the bind-mounted stores to uid %d)", uid)
	}
	return composeCmd
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// imageEnv reads deploy/images.env.
func imageEnv(t *testing.T, root string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "deploy", "images.env"))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok && !strings.HasPrefix(k, "#") {
			env[k] = v
		}
	}
	return env
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func (l *lab) composeRun(args ...string) string {
	l.t.Helper()
	return run(l.t, l.compose[0], append(slices.Clone(l.compose[1:]), args...)...)
}

// container returns the id of a service's container.
func (l *lab) container(service string) string {
	l.t.Helper()
	id := l.composeRun("ps", "-q", service)
	if id == "" {
		l.t.Fatalf("no container for %s", service)
	}
	return id
}

// writeStore makes a host's data directory: the tiny LLM and the tiny diffusion model in
// their stores, everything owned by the images' uid.
func writeStore(t *testing.T, dir, sdModel string) {
	t.Helper()
	llm, err := modelstore.Open(modelstore.Options{DataDir: dir, Type: modelstore.TypeLLM})
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "tiny.gguf")
	if err := ggufgen.WriteFile(src, ggufgen.DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := llm.Import(ctx, tinyModel, "tiny", src); err != nil {
		t.Fatal(err)
	}
	sd, err := modelstore.Open(modelstore.Options{DataDir: dir, Type: modelstore.TypeDiffusion})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sd.Import(ctx, tinySD, "tiny random-weight SD (test model)", sdModel); err != nil {
		t.Fatal(err)
	}
	chownTree(t, dir)
}

func chownTree(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, uid)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func writeSecret(t *testing.T, path, value string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(value+"\n"), 0o400); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, uid, uid); err != nil {
		t.Fatal(err)
	}
}

// labFile derives the test's compose file from deploy/compose/compose.yaml: host a is the
// file's llm, diffusion and monitor services, host b copies of them (-b), the orchestrator
// places images on both (-hosts), every host's store is a bind-mounted directory holding
// the test models, and the gateway is published on an ephemeral loopback port (compose
// would add an override's ports to the file's 8080, not replace it, hence a derived file).
// Everything else — images, users, read-only roots, capabilities, secrets, networks, the
// orchestrator's named volume, the health settings — is the file's own.
func labFile(t *testing.T, root, dir string, stores map[string]string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "deploy", "compose", "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	for k := range c {
		if strings.HasPrefix(k, "x-") {
			delete(c, k)
		}
	}
	svcs := c["services"].(map[string]any)
	svc := func(n string) map[string]any { return svcs[n].(map[string]any) }
	command := func(n string) []any { return svc(n)["command"].([]any) }
	for _, h := range []string{"a", "b"} {
		suffix := map[string]string{"a": "", "b": "-b"}[h]
		for _, base := range []string{"llm", "diffusion", "monitor"} {
			s := map[string]any{}
			for k, v := range svc(base) {
				s[k] = v
			}
			mode := ""
			if base == "monitor" {
				mode = ":ro"
			}
			s["volumes"] = []any{stores[h] + ":/var/lib/genailab" + mode}
			// The test decides when a killed host comes back.
			s["restart"] = "no"
			if base == "diffusion" {
				s["command"] = append(slices.Clone(command(base)), "-autostart", "-default-model", tinySD)
			}
			svcs[base+suffix] = s
		}
	}
	// The orchestrator: the two hosts instead of the file's one; a's budget of 1 byte makes
	// every image there offload its LLM. Short timings: the test waits for their effects.
	var oc []any
	for i := 0; i < len(command("orchestrator")); i++ {
		a := command("orchestrator")[i]
		if a == "-llm-addr" || a == "-diffusion-addr" || a == "-monitor-addr" {
			i++
			continue
		}
		oc = append(oc, a)
	}
	oc = append(oc, "-hosts", "a=llm:50051,diffusion:50052,monitor:50053,budget=1;b=llm-b:50051,diffusion-b:50052,monitor-b:50053",
		"-diffusion-model", tinySD, "-host-check-interval", "300ms", "-reload-backoff", "100ms", "-reload-backoff-max", "500ms",
		"-reload-timeout", "120s", "-free-timeout", "10s", "-drain-timeout", "2s", "-agent-keepalive-timeout", "2s")
	o := svc("orchestrator")
	o["command"] = oc
	o["volumes"] = []any{"orchestrator:/var/lib/genailab", stores["a"] + ":/var/lib/genailab-agents:ro"}
	o["depends_on"] = []any{"llm", "diffusion", "monitor", "llm-b", "diffusion-b", "monitor-b"}
	svc("gateway")["ports"] = []any{"127.0.0.1::8080"}
	c["secrets"] = map[string]any{
		"lab-token": map[string]any{"file": filepath.Join(dir, "lab-token")},
		"api-token": map[string]any{"file": filepath.Join(dir, "api-token")},
	}
	out, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "compose.json")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// get and post call the gateway with the API token and decode its JSON answer.
func (l *lab) do(method, path string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, l.gateway+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+apiToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := l.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

func (l *lab) must(method, path string, body, out any) {
	l.t.Helper()
	if err := l.do(method, path, body, out); err != nil {
		l.t.Fatal(err)
	}
}

type host struct {
	Name           string `json:"name"`
	State          string `json:"state"`
	StateReason    string `json:"stateReason"`
	LlmRunning     bool   `json:"llmRunning"`
	LlmOffloaded   bool   `json:"llmOffloaded"`
	DiffusionModel string `json:"diffusionModel"`
}

type job struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	Host     string `json:"host"`
	Error    string `json:"error"`
	Progress struct {
		Step int `json:"step"`
	} `json:"progress"`
	Result struct {
		Width int `json:"width"`
	} `json:"result"`
}

func (l *lab) hosts() map[string]host {
	var r struct {
		Hosts []host `json:"hosts"`
	}
	m := map[string]host{}
	if err := l.do(http.MethodGet, "/v1/hosts", nil, &r); err != nil {
		return m // the gateway or the orchestrator is not up yet
	}
	for _, h := range r.Hosts {
		m[h.Name] = h
	}
	return m
}

func (l *lab) savedStates(h string) int {
	l.t.Helper()
	var r struct {
		States []json.RawMessage `json:"states"`
	}
	l.must(http.MethodGet, "/v1/orchestrator/saved-state?host="+h, nil, &r)
	return len(r.States)
}

// waitFor polls a condition of the running lab (its state is only observable by asking).
func (l *lab) waitFor(what string, within time.Duration, ok func() bool) {
	l.t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			l.t.Fatalf("timed out after %v waiting for %s; hosts: %+v", within, what, l.hosts())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// watch follows a job's stream of updates (newline-delimited JSON from the gateway).
type watch struct {
	body io.Closer
	sc   *bufio.Scanner
}

func (l *lab) watchJob(ctx context.Context, id string) *watch {
	l.t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.gateway+"/v1/images/jobs/"+id+"/events", nil)
	if err != nil {
		l.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+apiToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		l.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		l.t.Fatalf("watch job %s: %s: %s", id, resp.Status, b)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	return &watch{body: resp.Body, sc: sc}
}

// next returns the next update; io.EOF once the job has ended and the stream closed.
func (w *watch) next() (*job, error) {
	if w.sc.Scan() {
		var m struct {
			Result *struct {
				Job job `json:"job"`
			} `json:"result"`
			Error json.RawMessage `json:"error"`
		}
		if err := json.Unmarshal(w.sc.Bytes(), &m); err != nil {
			return nil, fmt.Errorf("watch: %w: %s", err, w.sc.Bytes())
		}
		if m.Result == nil {
			return nil, fmt.Errorf("watch: %s", w.sc.Bytes())
		}
		return &m.Result.Job, nil
	}
	if err := w.sc.Err(); err != nil {
		return nil, err
	}
	return nil, io.EOF
}

// TestContainerLab: control + two agent hosts as containers on the compose file's private
// network. An image through the gateway; an image whose host (a, where it offloaded the
// LLM) is killed mid-generation finishes on b; the control container is replaced and the
// new one, from its named volume, still has a's saved LLM state and restores a's LLM when
// a comes back; every container has a read-only root and runs nothing as root, and the
// images' HEALTHCHECK reports each healthy.
func TestContainerLab(t *testing.T) {
	composeCmd := needDocker(t)
	root := repoRoot(t)
	env := imageEnv(t, root)
	for _, img := range []string{env["GENAILAB_CONTROL_IMAGE"], env["GENAILAB_AGENT_IMAGE"]} {
		if exec.Command("docker", "image", "inspect", img).Run() != nil {
			testenv.Need(t, RequireDockerEnv, fmt.Errorf("%w: image %s is not built (make images)", testenv.ErrMissing, img))
		}
	}
	sdcpp := run(t, "docker", "image", "inspect", "-f", `{{index .Config.Labels "io.genailab.sdcpp"}}`, env["GENAILAB_AGENT_IMAGE"])
	if sdcpp == "none" {
		testenv.Need(t, testenv.RequireSDCPPEnv, fmt.Errorf("%w: the agent image was built without stable-diffusion.cpp", testenv.ErrMissing))
	}
	realSD := testenv.RequireRealSD(t) // for its tiny model
	start := time.Now()

	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil { // the images' uid reaches the stores below it
		t.Fatal(err)
	}
	stores := map[string]string{"a": filepath.Join(dir, "host-a"), "b": filepath.Join(dir, "host-b")}
	for _, s := range stores {
		writeStore(t, s, realSD.Model)
	}
	writeSecret(t, filepath.Join(dir, "lab-token"), labToken)
	writeSecret(t, filepath.Join(dir, "api-token"), apiToken)
	file := labFile(t, root, dir, stores)
	project := fmt.Sprintf("genailab-e2e-%d", os.Getpid())
	l := &lab{t: t, client: &http.Client{Timeout: 60 * time.Second},
		compose: append(slices.Clone(composeCmd), "-p", project, "--env-file", filepath.Join(root, "deploy", "images.env"), "-f", file)}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := exec.Command(l.compose[0], append(slices.Clone(l.compose[1:]), "logs", "--no-color", "--tail", "60")...).CombinedOutput()
			t.Logf("compose logs:\n%s", out)
		}
		out, err := exec.Command(l.compose[0], append(slices.Clone(l.compose[1:]), "down", "-v", "--timeout", "5")...).CombinedOutput()
		if err != nil {
			t.Errorf("compose down: %v\n%s", err, out)
		}
	})
	upAt := time.Now()
	l.composeRun("up", "-d")
	port := l.composeRun("port", "gateway", "8080") // 127.0.0.1:PORT
	l.gateway = "http://" + port[strings.LastIndex(port, "\n")+1:]

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	bothReady := func() bool {
		hs := l.hosts()
		for _, n := range []string{"a", "b"} {
			if hs[n].State != "HOST_STATE_READY" || hs[n].DiffusionModel != tinySD {
				return false
			}
		}
		return true
	}
	l.waitFor("both hosts ready with the diffusion model", 3*time.Minute, bothReady)
	t.Logf("lab up and both hosts ready %v after compose up", time.Since(upAt).Round(time.Second))

	// a's LLM, through the gateway (its llm-addr is host a's llm service).
	l.must(http.MethodPost, "/v1/llm/start", map[string]any{"config": map[string]any{"modelId": tinyModel, "contextSize": 256, "threads": 1}}, nil)
	l.waitFor("a's LLM running", 2*time.Minute, func() bool { return l.hosts()["a"].LlmRunning })

	// 1. An image through the gateway.
	var img struct {
		Image string `json:"image"`
	}
	l.must(http.MethodPost, "/v1/images/generations", map[string]any{"prompt": "a lab in a container", "width": 64, "height": 64, "steps": 2}, &img)
	png, err := base64.StdEncoding.DecodeString(img.Image)
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("the gateway's image is not a PNG (%d bytes, %v)", len(png), err)
	}

	// 2. b drained, the next image goes to a, which offloads its LLM (budget 1 byte).
	l.must(http.MethodPost, "/v1/hosts/b/drain", map[string]any{}, nil)
	var sub struct {
		Job job `json:"job"`
	}
	l.must(http.MethodPost, "/v1/images/jobs", map[string]any{"params": map[string]any{"prompt": "a lab", "width": 128, "height": 128, "steps": 24}}, &sub)
	id := sub.Job.ID
	w := l.watchJob(ctx, id)
	defer w.body.Close()
	for {
		j, err := w.next()
		if err != nil {
			t.Fatalf("watch job %s: %v", id, err)
		}
		if strings.HasSuffix(j.Status, "SUCCEEDED") || strings.HasSuffix(j.Status, "FAILED") {
			t.Fatalf("job ended (%s on %q) before its progress on a was seen", j.Status, j.Host)
		}
		if j.Host == "a" && j.Progress.Step >= 2 {
			break
		}
	}
	if n := l.savedStates("a"); n != 1 {
		t.Fatalf("%d LLM states saved for a during its offload, want 1", n)
	}
	// The engine the job runs, sd-cli, is the diffusion container's child: not root either.
	if names := l.nonRoot("diffusion", l.mainPid("diffusion")); !slices.Contains(names, "sd-cli") {
		t.Errorf("no sd-cli in the diffusion container during the job: %v", names)
	}

	// 3. a's containers are killed mid-generation, b takes images again: the job finishes on b.
	l.must(http.MethodPost, "/v1/hosts/b/undrain", map[string]any{}, nil)
	killedAt := time.Now()
	l.composeRun("kill", "llm", "diffusion", "monitor")
	var final *job
	for {
		j, err := w.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("watch job after a was killed: %v", err)
		}
		final = j
	}
	if final == nil || final.Status != "JOB_STATUS_SUCCEEDED" || final.Host != "b" || final.Result.Width != 128 {
		t.Fatalf("job after a was killed: %+v", final)
	}
	t.Logf("failover: the job finished on b %v after a's containers were killed", time.Since(killedAt).Round(time.Millisecond))
	l.waitFor("a unreachable", time.Minute, func() bool { return l.hosts()["a"].State == "HOST_STATE_UNREACHABLE" })

	// 4. The control container is replaced: the new one has the job and a's saved LLM state
	// from its named volume.
	restartAt := time.Now()
	l.composeRun("rm", "-s", "-f", "orchestrator")
	l.composeRun("up", "-d", "--no-deps", "orchestrator")
	l.waitFor("the new orchestrator answering", 2*time.Minute, func() bool { return len(l.hosts()) == 2 })
	t.Logf("control restart: the new orchestrator answered %v after the old one was removed", time.Since(restartAt).Round(time.Millisecond))
	var got struct {
		Job job `json:"job"`
	}
	l.must(http.MethodGet, "/v1/images/jobs/"+id, nil, &got)
	if got.Job.Status != "JOB_STATUS_SUCCEEDED" || got.Job.Host != "b" {
		t.Fatalf("the job after the control restart: %+v", got.Job)
	}
	if n := l.savedStates("a"); n != 1 {
		t.Fatalf("%d LLM states saved for a after the control restart, want 1", n)
	}

	// 5. a comes back: the new orchestrator reloads a's LLM from the saved state (a's llm
	// service does not start one by itself: no -autostart).
	backAt := time.Now()
	l.composeRun("up", "-d", "--no-deps", "llm", "diffusion", "monitor")
	l.waitFor("a ready with its LLM restored", 3*time.Minute, func() bool {
		h := l.hosts()["a"]
		return h.State == "HOST_STATE_READY" && h.LlmRunning && !h.LlmOffloaded
	})
	t.Logf("restore: a's LLM running again %v after a's containers were started", time.Since(backAt).Round(time.Millisecond))
	// The gateway's own connection to a's llm service: the container came back with a new
	// address, which gRPC's DNS resolver picks up on its next resolution (at most every 30 s).
	var info struct {
		Info struct {
			ModelID string `json:"modelId"`
		} `json:"info"`
	}
	l.waitFor("a's LLM through the gateway", 2*time.Minute, func() bool {
		return l.do(http.MethodGet, "/v1/llm", nil, &info) == nil && info.Info.ModelID == tinyModel
	})
	t.Logf("the gateway reached a's new llm container %v after it was started", time.Since(backAt).Round(time.Millisecond))

	// 6. What the images promise, on every container.
	services := []string{"llm", "diffusion", "monitor", "llm-b", "diffusion-b", "monitor-b", "orchestrator", "gateway"}
	l.waitFor("every container healthy (the images' HEALTHCHECK)", 2*time.Minute, func() bool {
		for _, s := range services {
			if run(t, "docker", "inspect", "-f", "{{.State.Health.Status}}", l.container(s)) != "healthy" {
				return false
			}
		}
		return true
	})
	for _, s := range services {
		id := l.container(s)
		var insp []struct {
			Config struct {
				User string `json:"User"`
			} `json:"Config"`
			HostConfig struct {
				ReadonlyRootfs bool     `json:"ReadonlyRootfs"`
				CapDrop        []string `json:"CapDrop"`
			} `json:"HostConfig"`
			State struct {
				Pid int `json:"Pid"`
			} `json:"State"`
		}
		if err := json.Unmarshal([]byte(run(t, "docker", "inspect", id)), &insp); err != nil || len(insp) != 1 {
			t.Fatalf("docker inspect %s: %v", s, err)
		}
		c := insp[0]
		if !c.HostConfig.ReadonlyRootfs {
			t.Errorf("%s: the root filesystem is writable", s)
		}
		if c.Config.User != "65532:65532" {
			t.Errorf("%s runs as %q", s, c.Config.User)
		}
		l.nonRoot(s, c.State.Pid)
	}
	// The agent image has coreutils (its glibc base); a write to its root must fail.
	out, err := exec.Command("docker", "exec", l.container("llm"), "/usr/bin/touch", "/usr/local/bin/x").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Read-only file system") {
		t.Errorf("a write to the agent's root filesystem: %v %s", err, out)
	}
	t.Logf("container lab test took %v", time.Since(start).Round(time.Second))
}

// nonRoot checks that no process of a container runs as root, and returns their names.
func (l *lab) nonRoot(service string, pid int) []string {
	l.t.Helper()
	procs := processTree(l.t, pid)
	for p, name := range procs {
		if u := uids(l.t, p); u != "" && u != strconv.Itoa(uid) {
			l.t.Errorf("%s: process %d (%s) runs as uid %s", service, p, name, u)
		}
	}
	names := slices.Sorted(mapValues(procs))
	l.t.Logf("%s: %d processes, all uid %d: %v", service, len(procs), uid, names)
	return names
}

func (l *lab) mainPid(service string) int {
	l.t.Helper()
	pid, err := strconv.Atoi(run(l.t, "docker", "inspect", "-f", "{{.State.Pid}}", l.container(service)))
	if err != nil {
		l.t.Fatal(err)
	}
	return pid
}

func mapValues(m map[int]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for _, v := range m {
			if !yield(v) {
				return
			}
		}
	}
}

// processTree returns the process and its descendants (pid → command name), from /proc:
// the containers' processes are this machine's.
func processTree(t *testing.T, rootPid int) map[int]string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	parent := map[int]int{}
	name := map[int]string{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // gone
		}
		// pid (comm) state ppid ...
		s := string(b)
		open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || close < open {
			continue
		}
		f := strings.Fields(s[close+1:])
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		parent[pid], name[pid] = ppid, s[open+1:close]
	}
	out := map[int]string{}
	for pid := range name {
		for p := pid; p > 0; p = parent[p] {
			if p == rootPid {
				out[pid] = name[pid]
				break
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("no process %d", rootPid)
	}
	return out
}

// uids returns a process's real, effective, saved and filesystem uids when they are one
// value, else all four; "" for a process that has ended.
func uids(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if errors.Is(err, os.ErrNotExist) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
			f := strings.Fields(rest)
			for _, u := range f {
				if u != f[0] {
					return strings.Join(f, ",")
				}
			}
			return f[0]
		}
	}
	t.Fatalf("no Uid in /proc/%d/status", pid)
	return ""
}

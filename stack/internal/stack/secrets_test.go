package stack_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	reflectpb "google.golang.org/grpc/reflection/grpc_reflection_v1"

	"github.com/genailab/genailab/pkg/auth"
	"github.com/genailab/genailab/pkg/testenv"
	"github.com/genailab/genailab/stack/internal/stack"
)

// TestTokensAreNotOnCommandLinesOrInEnginesEnvironments is issue 14's "tokens on
// command lines and in engines' environments": `genailab up -token` used to put the
// token in the argv of all six processes (readable by any local user with ps), and
// llama-server inherited the services' GENAILAB_* secrets. Now the stack hands the
// token to the services in a 0600 file, so no service's /proc/PID/cmdline holds it, and
// the engine (the real llama-server, running the tiny model) gets neither the token nor
// any GENAILAB_* variable, although the launcher's environment holds both. The token
// still protects every service and the gateway.
func TestTokensAreNotOnCommandLinesOrInEnginesEnvironments(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts every service")
	}
	llama := testenv.RequireLlamaServer(t)
	var b [16]byte
	_, _ = rand.Read(b[:])
	token := "tok-" + hex.EncodeToString(b[:])
	// Secrets in the launcher's environment reach the services (allowed) but never an
	// engine; a stale per-service token must not clash with the stack's token file.
	t.Setenv("GENAILAB_TOKEN", token)
	t.Setenv("HF_TOKEN", token)
	t.Setenv("GENAILAB_LAB_SECRET", token)
	t.Setenv("GENAILAB_LLM_TOKEN", "stale-"+token)
	t.Setenv("GENAILAB_GATEWAY_BACKEND_TOKEN", "stale-"+token)

	bin := buildServices(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	data := t.TempDir()
	model, err := stack.EnsureTinyModel(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncWriter{w: &bytes.Buffer{}}
	s, err := stack.Start(ctx, stack.Options{DataDir: data, BinDir: bin, Ephemeral: true, Token: token,
		LlamaServer: llama, LLMModel: model, LogOutput: logs})
	if err != nil {
		t.Fatalf("start stack: %v\n%s", err, logs.String())
	}
	stopped := false
	defer func() {
		if !stopped {
			s.Stop(context.Background())
		}
	}()

	tokenFile := filepath.Join(data, "run", stack.TokenFileName)
	if st, err := os.Stat(tokenFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v, %v", st, err)
	}
	services := s.Pids()
	if len(services) != 5 {
		t.Fatalf("service pids %v", services)
	}
	// The LLM service starts the tiny model at boot: wait for its llama-server.
	var engines []int
	deadline := time.Now().Add(time.Minute)
	for {
		engines = descendants(services)
		if slices.ContainsFunc(engines, func(pid int) bool { return strings.Contains(cmdline(pid), "llama-server") }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no llama-server under the services %v (found %v)\n%s", services, engines, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, pid := range append(append([]int{}, services...), engines...) {
		if c := cmdline(pid); c == "" || strings.Contains(c, token) {
			t.Errorf("pid %d: command line %q holds the token (or is unreadable)", pid, c)
		}
	}
	// The services do get the launcher's environment (HF_TOKEN is the LLM service's to
	// use), so the engines' environments below are a real test.
	if env, err := os.ReadFile("/proc/" + strconv.Itoa(services[0]) + "/environ"); err != nil ||
		!bytes.Contains(env, []byte("HF_TOKEN="+token)) || !bytes.Contains(env, []byte("GENAILAB_LAB_SECRET="+token)) {
		t.Fatalf("the LLM service (%s) did not inherit the launcher's environment: %v", cmdline(services[0]), err)
	}
	for _, pid := range engines {
		env, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(env, []byte(token)) || bytes.Contains(env, []byte("GENAILAB_")) {
			t.Errorf("engine %d (%s) inherited a secret: %q", pid, cmdline(pid), env)
		}
	}

	// The token still guards every gRPC service and the gateway.
	for _, name := range []string{"llm", "diffusion", "monitor", "orchestrator"} {
		for _, tok := range []string{"", token} {
			opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
			if tok != "" {
				opts = append(opts, grpc.WithPerRPCCredentials(auth.TokenCredentials{Token: tok}))
			}
			cc, err := grpc.NewClient(s.Addr(name), opts...)
			if err != nil {
				t.Fatal(err)
			}
			stream, err := reflectpb.NewServerReflectionClient(cc).ServerReflectionInfo(ctx)
			if err == nil {
				err = stream.Send(&reflectpb.ServerReflectionRequest{MessageRequest: &reflectpb.ServerReflectionRequest_ListServices{}})
			}
			if err == nil {
				_, err = stream.Recv()
			}
			if (err == nil) != (tok != "") {
				t.Errorf("%s with token %v: %v", name, tok != "", err)
			}
			cc.Close()
		}
	}
	gw := "http://" + s.Addr("gateway")
	for _, tok := range []string{"", "wrong", token} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, gw+"/v1/llm", nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want := map[bool]int{true: 200, false: 401}[tok == token]; resp.StatusCode != want {
			t.Errorf("GET /v1/llm with token %q: %d, want %d", tok, resp.StatusCode, want)
		}
	}

	s.Stop(context.Background())
	stopped = true
	if _, err := os.Stat(tokenFile); !os.IsNotExist(err) {
		t.Errorf("token file left after Stop: %v", err)
	}
}

// descendants lists the processes below pids (children, grandchildren, ...).
func descendants(pids []int) []int {
	parent := map[int]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(st, ')')
		if i < 0 {
			continue
		}
		if f := strings.Fields(string(st[i+1:])); len(f) > 1 {
			parent[pid], _ = strconv.Atoi(f[1])
		}
	}
	in := map[int]bool{}
	for _, p := range pids {
		in[p] = true
	}
	var out []int
	for changed := true; changed; {
		changed = false
		for pid, pp := range parent {
			if in[pp] && !in[pid] {
				in[pid], changed = true, true
				out = append(out, pid)
			}
		}
	}
	return out
}

func cmdline(pid int) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return strings.ReplaceAll(string(b), "\x00", " ")
}

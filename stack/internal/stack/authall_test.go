package stack_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/genailab/genailab/pkg/auth"
	"github.com/genailab/genailab/pkg/authprobe"
	"github.com/genailab/genailab/stack/internal/stack"
)

// TestEveryRPCAndRouteRefusesCallersWithoutTheToken is the fault suite's "auth refusals
// for every route and RPC" (issue 14), on the whole stack as separate processes with a
// token: every method of every service each gRPC server lists through reflection
// answers Unauthenticated without a token and with a wrong one (the standard health
// service is the documented exception: probes carry no token), and every route of the
// gateway's OpenAPI document answers 401 with the seed's error JSON, as do the OpenAI
// surface, the diffusion service's seed wrapper and unknown paths. The web panel's
// static files (no data) and GET /health stay public.
func TestEveryRPCAndRouteRefusesCallersWithoutTheToken(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts every service")
	}
	const token = "right-token-for-the-fault-suite"
	bin := buildServices(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	logs := &syncWriter{w: &bytes.Buffer{}}
	s, err := stack.Start(ctx, stack.Options{DataDir: t.TempDir(), BinDir: bin, Ephemeral: true, Token: token, LogOutput: logs})
	if err != nil {
		t.Fatalf("start stack: %v\n%s", err, logs.String())
	}
	defer s.Stop(context.Background())

	dial := func(addr, tok string) *grpc.ClientConn {
		opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
		if tok != "" {
			opts = append(opts, grpc.WithPerRPCCredentials(auth.TokenCredentials{Token: tok}))
		}
		cc, err := grpc.NewClient(addr, opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cc.Close() })
		return cc
	}
	probed, services := 0, map[string]bool{}
	for _, name := range []string{"llm", "diffusion", "monitor", "orchestrator"} {
		addr := s.Addr(name)
		methods, err := authprobe.Methods(ctx, dial(addr, token))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := authprobe.Methods(ctx, dial(addr, "")); err == nil {
			t.Errorf("%s: reflection answers without the token", name)
		}
		for _, tok := range []string{"", "wrong-" + token} {
			cc := dial(addr, tok)
			for _, m := range methods {
				callCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
				got := authprobe.Call(callCtx, cc, m)
				cancel()
				want := codes.Unauthenticated
				if strings.HasPrefix(m.FullName, "/grpc.health.v1.Health/") {
					// Public by design: Check answers, Watch sends the status at once.
					want = codes.OK
				}
				if got != want {
					t.Errorf("%s %s with token %q: %v, want %v", name, m.FullName, tok, got, want)
				}
				if want == codes.Unauthenticated {
					probed++
				}
			}
		}
		for _, m := range methods {
			services[m.FullName[1:strings.LastIndex(m.FullName, "/")]] = true
		}
	}
	for _, svc := range []string{"genailab.llm.v1.LLMService", "genailab.diffusion.v1.DiffusionService", "genailab.models.v1.ModelService",
		"genailab.monitor.v1.MonitorService", "genailab.orchestrator.v1.OrchestratorService", "grpc.reflection.v1.ServerReflection", "grpc.health.v1.Health"} {
		if !services[svc] {
			t.Errorf("no server lists %s: %v", svc, services)
		}
	}
	t.Logf("gRPC: %d services, %d calls refused with Unauthenticated (health open)", len(services), probed)

	// REST: every route of the OpenAPI document (the grpc-gateway's route table), the
	// OpenAI surface and the seed wrapper.
	gw := "http://" + s.Addr("gateway")
	do := func(method, url, tok string) (int, []byte) {
		req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return resp.StatusCode, b.Bytes()
	}
	st, doc := do(http.MethodGet, gw+"/openapi.json", token)
	if st != 200 {
		t.Fatalf("GET /openapi.json with the token: %d %s", st, doc)
	}
	if st, _ := do(http.MethodGet, gw+"/openapi.json", ""); st != 401 {
		t.Errorf("GET /openapi.json without the token: %d", st)
	}
	var spec struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(doc, &spec); err != nil || len(spec.Paths) == 0 {
		t.Fatalf("openapi.json: %v", err)
	}
	param := regexp.MustCompile(`\{[^}]+\}`)
	var routes []string
	for path, ops := range spec.Paths {
		for method := range ops {
			if m := strings.ToUpper(method); m != "PARAMETERS" {
				routes = append(routes, m+" "+param.ReplaceAllString(path, "x"))
			}
		}
	}
	sort.Strings(routes)
	routes = append(routes, "POST /openai/v1/images/generations", "POST /openai/v1/chat/completions", "GET /openai/v1/models",
		"GET /openai/v1/nope", "GET /v1/nope", "DELETE /nope")
	refused := 0
	for _, r := range routes {
		method, path, _ := strings.Cut(r, " ")
		public := path == "/health" && method == http.MethodGet
		for _, tok := range []string{"", "wrong-" + token} {
			st, body := do(method, gw+path, tok)
			if public {
				if st != 200 {
					t.Errorf("%s (public) without the token: %d %s", r, st, body)
				}
				continue
			}
			var e map[string]any
			if st != 401 || json.Unmarshal(body, &e) != nil || e["error"] == nil {
				t.Errorf("%s with token %q: %d %s, want 401 with an error", r, tok, st, body)
			}
			refused++
		}
	}
	for _, p := range []string{"/", "/index.html"} {
		if st, _ := do(http.MethodGet, gw+p, ""); st != 200 {
			t.Errorf("web panel %s without the token: %d", p, st)
		}
	}
	wrap := "http://" + s.Addr("diffusion-http")
	for _, tok := range []string{"", "wrong-" + token} {
		if st, body := do(http.MethodPost, wrap+"/v1/images/generations", tok); st != 401 {
			t.Errorf("seed wrapper generation with token %q: %d %s", tok, st, body)
		}
		refused++
	}
	if st, _ := do(http.MethodGet, wrap+"/health", ""); st != 200 {
		t.Errorf("seed wrapper /health without the token: %d", st)
	}
	t.Logf("REST: %d routes, %d requests refused with 401", len(routes), refused)
}

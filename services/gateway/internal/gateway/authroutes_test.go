package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/genailab/genailab/gen/openapi"
	"github.com/genailab/genailab/services/gateway/internal/gateway"
	"github.com/genailab/genailab/services/gateway/internal/openai"
)

// TestEveryRouteRefusesCallersWithoutTheToken is the fault suite's "auth refusals for
// every route" (issue 14) on the gateway: with a token configured and every backend
// configured (never reached), each route of the OpenAPI document (the grpc-gateway's
// route table, generated from the protos), each route of the OpenAI surface, /openapi.json
// and unknown paths answer 401 with the seed's {"error": ...} without a token and with a
// wrong one. The documented exceptions stay public: GET /health (probes) and the web
// panel's static files (they hold no data; the page asks for the token).
func TestEveryRouteRefusesCallersWithoutTheToken(t *testing.T) {
	const token = "the-right-token"
	// Addresses nothing listens on: a request that got past the guard would fail (503),
	// not pass.
	g, err := gateway.New(context.Background(), gateway.Options{Token: token, Backends: gateway.Backends{
		LLM: "127.0.0.1:1", Diffusion: "127.0.0.1:1", Monitor: "127.0.0.1:1", Orchestrator: "127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	srv := httptest.NewServer(g)
	defer srv.Close()

	var spec struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openapi.JSON, &spec); err != nil {
		t.Fatal(err)
	}
	param := regexp.MustCompile(`\{[^}]+\}`)
	var routes []string
	for path, ops := range spec.Paths {
		for method := range ops {
			switch m := strings.ToUpper(method); m {
			case "GET", "POST", "PUT", "PATCH", "DELETE":
				routes = append(routes, m+" "+param.ReplaceAllString(path, "x1"))
			}
		}
	}
	if len(routes) < 20 {
		t.Fatalf("only %d routes in the OpenAPI document", len(routes))
	}
	routes = append(routes, openai.Routes()...)
	routes = append(routes, "GET /openapi.json", "GET /openai/v1/nope", "GET /v1/nope", "DELETE /nope")
	sort.Strings(routes)

	do := func(method, path, tok string) (int, map[string]any) {
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(`{"prompt":"x"}`))
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
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	refused := 0
	for _, r := range routes {
		method, path, _ := strings.Cut(r, " ")
		if method == http.MethodGet && path == "/health" {
			continue // public, below
		}
		for _, tok := range []string{"", "wrong", token + "x", strings.ToUpper(token)} {
			st, body := do(method, path, tok)
			if msg, _ := body["error"].(string); st != http.StatusUnauthorized || msg == "" || len(body) != 1 {
				t.Errorf("%s with token %q: %d %v, want 401 {\"error\": ...}", r, tok, st, body)
			}
			refused++
		}
		// With the token the guard lets it through to the route (or its 404/405): never 401.
		if st, body := do(method, path, token); st == http.StatusUnauthorized {
			t.Errorf("%s with the token: 401 %v", r, body)
		}
	}
	// The documented exceptions.
	for _, p := range []string{"/", "/index.html"} {
		if st, _ := do(http.MethodGet, p, ""); st != http.StatusOK {
			t.Errorf("web panel GET %s without a token: %d", p, st)
		}
	}
	if st, _ := do(http.MethodGet, "/health", ""); st == http.StatusUnauthorized {
		t.Errorf("GET /health without a token: 401")
	}
	t.Logf("%d routes, %d requests refused with 401", len(routes), refused)
}

package examples_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/genailab/genailab/pkg/testenv"
	"github.com/genailab/genailab/stack/internal/examples"
)

// gatewayRoutes are the gateway's paths: the HTTP mapping of the gRPC APIs
// (proto/gateway.yaml), the OpenAI surface (services/gateway/internal/openai) and the
// gateway's own (/openapi.json), read from their sources.
func gatewayRoutes(t *testing.T, root string) []string {
	t.Helper()
	var routes []string
	yaml, err := os.ReadFile(filepath.Join(root, "proto", "gateway.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`(?m)^\s+(?:get|post|put|patch|delete):\s*(\S+)`).FindAllStringSubmatch(string(yaml), -1) {
		routes = append(routes, m[1])
	}
	openai, err := os.ReadFile(filepath.Join(root, "services", "gateway", "internal", "openai", "openai.go"))
	if err != nil {
		t.Fatal(err)
	}
	prefix := regexp.MustCompile(`const Prefix = "([^"]+)"`).FindStringSubmatch(string(openai))
	if prefix == nil {
		t.Fatal("openai.go: no Prefix constant")
	}
	for _, m := range regexp.MustCompile(`"[A-Z]+ "\s*\+\s*Prefix\s*\+\s*"([^"]+)"`).FindAllStringSubmatch(string(openai), -1) {
		routes = append(routes, prefix[1]+m[1])
	}
	gw, err := os.ReadFile(filepath.Join(root, "services", "gateway", "internal", "gateway", "gateway.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`Handle(?:Func)?\("[A-Z]+ (/[^" ]+)"`).FindAllStringSubmatch(string(gw), -1) {
		routes = append(routes, m[1])
	}
	if len(routes) < 20 {
		t.Fatalf("only %d gateway routes found: %v", len(routes), routes)
	}
	return routes
}

// docPathRE finds the gateway paths a README names: in a URL (http://host:port/v1/...,
// $GW/v1/...) or standing alone (`/v1/llm/chat`). /sdcpp/v1/... (sd-server's own API) is
// not the gateway's.
var docPathRE = regexp.MustCompile("(?:https?://[^/\\s\"'`]+|\\$\\w+|[\\s(`'\"])(/(?:openai/)?v1(?:/[^\\s`'\")?#,]*)?)")

// TestDocumentedRoutesExist checks every gateway path a README mentions, in its examples or
// its prose, against the gateway's routes: a wrong path (/v1/chat/completions instead of
// /openai/v1/chat/completions) is a 404 for the reader.
func TestDocumentedRoutesExist(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	routes := gatewayRoutes(t, root)
	// The regression of issue 15: deploy/README named /v1/chat/completions, a 404.
	if routed("/v1/chat/completions", routes) || !routed("/openai/v1/chat/completions", routes) || !routed("/v1/images/jobs/$id/events", routes) {
		t.Fatal("route matching is broken")
	}
	files, err := examples.Files(root)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range files {
		md, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(md), "\n") {
			for _, m := range docPathRE.FindAllStringSubmatch(line, -1) {
				for _, p := range expandAlternatives(m[1]) {
					n++
					if !routed(p, routes) {
						t.Errorf("%s:%d: %s is not a route of the gateway", f, i+1, p)
					}
				}
			}
		}
	}
	if n < 20 {
		t.Fatalf("only %d documented paths found: the pattern is broken", n)
	}
}

// expandAlternatives turns ".../drain|undrain" into both paths.
func expandAlternatives(p string) []string {
	p = strings.TrimRight(p, ".:;")
	i := strings.LastIndex(p, "/")
	last := p[i+1:]
	if !strings.Contains(last, "|") {
		return []string{p}
	}
	var out []string
	for _, alt := range strings.Split(last, "|") {
		out = append(out, p[:i+1]+alt)
	}
	return out
}

// routed reports whether a documented path matches a route: segment by segment, a
// placeholder on either side ({id}, <id>, $id) matching any; a path ending in "/" or "…"
// (a prefix) matches a route it begins.
func routed(doc string, routes []string) bool {
	prefix := strings.HasSuffix(doc, "/") || strings.HasSuffix(doc, "…") || strings.HasSuffix(doc, "/v1") // a base URL
	doc = strings.TrimRight(doc, "/…")
	ds := strings.Split(doc, "/")
	for _, r := range routes {
		rs := strings.Split(strings.TrimRight(r, "/"), "/")
		if len(rs) < len(ds) || !prefix && len(rs) != len(ds) {
			continue
		}
		ok := true
		for i, d := range ds {
			if d != rs[i] && !placeholder(d) && !placeholder(rs[i]) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func placeholder(seg string) bool {
	return strings.HasPrefix(seg, "{") || strings.HasPrefix(seg, "<") || strings.HasPrefix(seg, "$")
}

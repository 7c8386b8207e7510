package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

func get(t *testing.T, srv *httptest.Server, method, path string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestHandlerServesIndexAndAssets(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()

	cases := []struct {
		path, contentType, contains string
	}{
		{"/", "text/html; charset=utf-8", `<script type="module" src="/assets/js/main.js">`},
		{"/index.html", "text/html; charset=utf-8", "<title>genailab control panel</title>"},
		{"/assets/app.css", "text/css; charset=utf-8", ".tab-button"},
		{"/assets/js/main.js", "text/javascript; charset=utf-8", "import * as api from './api.js'"},
		{"/assets/js/api.js", "text/javascript; charset=utf-8", "export async function stream("},
		{"/assets/js/tabs/resources.js", "text/javascript; charset=utf-8", "/v1/system/usage/watch"},
		{"/assets/favicon.svg", "image/svg+xml", "<svg"},
	}
	for _, c := range cases {
		resp, body := get(t, srv, http.MethodGet, c.path, nil)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: status %d", c.path, resp.StatusCode)
			continue
		}
		if got := resp.Header.Get("Content-Type"); got != c.contentType {
			t.Errorf("GET %s: Content-Type %q, want %q", c.path, got, c.contentType)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no nosniff header", c.path)
		}
		if !strings.Contains(body, c.contains) {
			t.Errorf("GET %s: body lacks %q", c.path, c.contains)
		}
	}
}

func TestIndexHasStrictCSP(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	resp, _ := get(t, srv, http.MethodGet, "/", nil)
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"script-src 'self'", "connect-src 'self'", "object-src 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("CSP allows inline code: %q", csp)
	}
}

func TestEveryModuleImportResolves(t *testing.T) {
	// Every relative import in the JavaScript modules must name an embedded file: the
	// browser would fail the whole panel on a missing one.
	h, err := newHandler(static)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for p, a := range h.assets {
		if !strings.HasSuffix(p, ".js") {
			continue
		}
		dir := p[:strings.LastIndex(p, "/")+1]
		for _, line := range strings.Split(string(a.body), "\n") {
			i := strings.Index(line, " from '")
			if !strings.HasPrefix(strings.TrimSpace(line), "import") && !strings.HasPrefix(strings.TrimSpace(line), "} from") {
				continue
			}
			if i < 0 {
				continue
			}
			spec := line[i+len(" from '"):]
			spec = spec[:strings.Index(spec, "'")]
			target := resolve(dir, spec)
			if _, ok := h.assets[target]; !ok {
				t.Errorf("%s imports %q (%s): not embedded", p, spec, target)
			}
			n++
		}
	}
	if n < 10 {
		t.Fatalf("found only %d imports; the scan is broken", n)
	}
}

func resolve(dir, spec string) string {
	parts := strings.Split(strings.TrimSuffix(dir, "/"), "/")
	for _, s := range strings.Split(spec, "/") {
		switch s {
		case ".":
		case "..":
			parts = parts[:len(parts)-1]
		default:
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, "/")
}

func TestHandlerRefusesOtherPathsAndMethods(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	for _, p := range []string{"/nope", "/assets/nope.js", "/static/index.html", "/assets/../index.html", "/v1/system"} {
		resp, _ := get(t, srv, http.MethodGet, p, nil)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", p, resp.StatusCode)
		}
	}
	resp, _ := get(t, srv, http.MethodPost, "/", nil)
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /: status %d, want 405", resp.StatusCode)
	}
}

func TestETagRevalidation(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	resp, _ := get(t, srv, http.MethodGet, "/assets/app.css", nil)
	etag := resp.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("Cache-Control %q", cc)
	}
	resp, body := get(t, srv, http.MethodGet, "/assets/app.css", map[string]string{"If-None-Match": etag})
	if resp.StatusCode != http.StatusNotModified || body != "" {
		t.Errorf("revalidation: status %d, body %d bytes; want 304 and none", resp.StatusCode, len(body))
	}
	resp, body = get(t, srv, http.MethodHead, "/", nil)
	if resp.StatusCode != http.StatusOK || body != "" {
		t.Errorf("HEAD /: status %d, body %d bytes", resp.StatusCode, len(body))
	}
}

func TestUnknownFileTypeIsRefusedAtLoad(t *testing.T) {
	fsys := fstest.MapFS{
		"static/index.html":     {Data: []byte("<!doctype html>")},
		"static/assets/x.woff2": {Data: []byte("font")},
	}
	if _, err := newHandler(fsys); err == nil || !strings.Contains(err.Error(), "no content type") {
		t.Fatalf("err = %v, want a missing content type error", err)
	}
	if _, err := newHandler(fstest.MapFS{"static/assets/a.css": {Data: []byte("a{}")}}); err == nil {
		t.Fatal("no error without index.html")
	}
}

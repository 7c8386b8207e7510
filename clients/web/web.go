// Package web is genailab's web control panel: plain HTML, CSS and JavaScript modules
// (no bundler, no build step), embedded in the binary so the REST gateway serves the
// panel at / without Node at run time. The panel talks only to the gateway's /v1 API
// and its newline-delimited JSON streams.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// AssetPrefix is the URL path under which the panel's assets are served.
const AssetPrefix = "/assets/"

// contentTypes fixes the type of every kind of asset the panel ships, so that the
// answer does not depend on the host's mime.types.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".json": "application/json",
}

// csp allows only the panel's own scripts and styles, images from data: and blob: URLs
// (generated images), and connections to the gateway itself.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'"

// asset is one embedded file, ready to serve.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// handler serves the embedded files.
type handler struct {
	assets map[string]asset // by URL path
}

// Handler serves the panel: index.html at / and the assets under /assets/. Any other
// path answers 404. Only GET and HEAD are allowed.
func Handler() http.Handler {
	h, err := newHandler(static)
	if err != nil {
		// The files are embedded at build time; failing here means the build is broken.
		panic(fmt.Sprintf("web: load embedded assets: %v", err))
	}
	return h
}

func newHandler(fsys fs.FS) (*handler, error) {
	root, err := fs.Sub(fsys, "static")
	if err != nil {
		return nil, err
	}
	h := &handler{assets: map[string]asset{}}
	err = fs.WalkDir(root, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ct, ok := contentTypes[path.Ext(p)]
		if !ok {
			return fmt.Errorf("%s: no content type for %q files", p, path.Ext(p))
		}
		b, err := fs.ReadFile(root, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		urlPath := "/" + p
		if p == "index.html" {
			urlPath = "/"
		}
		h.assets[urlPath] = asset{body: b, contentType: ct, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if _, ok := h.assets["/"]; !ok {
		return nil, fmt.Errorf("index.html missing")
	}
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p := r.URL.Path
	if p == "/index.html" {
		p = "/"
	}
	a, ok := h.assets[p]
	if !ok || (p != "/" && !strings.HasPrefix(p, AssetPrefix)) {
		http.NotFound(w, r)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", a.contentType)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer")
	// Revalidate every time (cheap: ETag), so a new binary's panel is picked up at once.
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("ETag", a.etag)
	if p == "/" {
		hdr.Set("Content-Security-Policy", csp)
		hdr.Set("X-Frame-Options", "DENY")
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}

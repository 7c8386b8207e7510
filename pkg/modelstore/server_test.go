package modelstore

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// fileServer is a real HTTP server for tests: it serves files with ETag and
// Range/If-Range support, counts what it sent, and can misbehave on demand.
type fileServer struct {
	t   testing.TB
	srv *httptest.Server

	mu       sync.Mutex
	files    map[string]*served
	requests []seenRequest
}

type served struct {
	data        []byte
	etag        string
	status      int  // answer every request with this status when set
	ignoreRange bool // always 200 with the whole file
	noHead      bool // answer HEAD with 405
	cutAfter    []int
	// gate, when set, is called after half of the body was written; it may block.
	gate  func(r *http.Request)
	bytes int64 // body bytes sent
}

type seenRequest struct {
	Method, Path, Range, IfRange, Auth string
	Status                             int
	Bytes                              int64
}

func newFileServer(t testing.TB) *fileServer {
	fs := &fileServer{t: t, files: map[string]*served{}}
	fs.srv = httptest.NewServer(http.HandlerFunc(fs.serve))
	t.Cleanup(fs.srv.Close)
	return fs
}

// safetensorsBytes is a whole safetensors file of n bytes (one U8 tensor of random data), for
// tests of diffusion models, whose files the store checks (modelfile.Check).
func safetensorsBytes(n int, seed uint64) []byte {
	hdr := []byte(`{"t":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}`)
	for pass := 0; pass < 2; pass++ {
		data := n - 8 - len(hdr)
		hdr = []byte(fmt.Sprintf(`{"t":{"dtype":"U8","shape":[%d],"data_offsets":[0,%d]}}`, data, data))
	}
	data := n - 8 - len(hdr)
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(hdr)))
	b = append(b, hdr...)
	return append(b, randomBytes(data, seed)...)
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// add serves data at path and returns its URL.
func (fs *fileServer) add(path string, data []byte) string {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.files[path] = &served{data: data, etag: `"` + sha(data)[:16] + `"`}
	return fs.srv.URL + path
}

func (fs *fileServer) file(path string) *served {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.files[path]
}

func (fs *fileServer) set(path string, f func(*served)) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f(fs.files[path])
}

func (fs *fileServer) seen(method, path string) []seenRequest {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	var out []seenRequest
	for _, r := range fs.requests {
		if r.Method == method && r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

func (fs *fileServer) serve(w http.ResponseWriter, r *http.Request) {
	fs.mu.Lock()
	f, ok := fs.files[r.URL.EscapedPath()]
	if !ok {
		f, ok = fs.files[r.URL.Path]
	}
	rec := seenRequest{Method: r.Method, Path: r.URL.Path, Range: r.Header.Get("Range"), IfRange: r.Header.Get("If-Range"), Auth: r.Header.Get("Authorization")}
	idx := len(fs.requests)
	fs.requests = append(fs.requests, rec)
	var data []byte
	var etag string
	var status int
	var ignoreRange, noHead bool
	cut := -1
	var gate func(*http.Request)
	if ok {
		data, etag, status, ignoreRange, noHead, gate = f.data, f.etag, f.status, f.ignoreRange, f.noHead, f.gate
		if r.Method == http.MethodGet && len(f.cutAfter) > 0 {
			cut, f.cutAfter = f.cutAfter[0], f.cutAfter[1:]
		}
	}
	fs.mu.Unlock()
	finish := func(code int, n int64) {
		fs.mu.Lock()
		fs.requests[idx].Status, fs.requests[idx].Bytes = code, n
		if f != nil {
			f.bytes += n
		}
		fs.mu.Unlock()
	}

	if !ok {
		http.NotFound(w, r)
		finish(404, 0)
		return
	}
	if status != 0 {
		http.Error(w, http.StatusText(status), status)
		finish(status, 0)
		return
	}
	if r.Method == http.MethodHead && noHead {
		w.WriteHeader(http.StatusMethodNotAllowed)
		finish(405, 0)
		return
	}
	w.Header().Set("ETag", etag)
	if !ignoreRange {
		w.Header().Set("Accept-Ranges", "bytes")
	}
	start := 0
	code := http.StatusOK
	if rg := r.Header.Get("Range"); rg != "" && !ignoreRange {
		ir := r.Header.Get("If-Range")
		if ir == "" || ir == etag {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(rg, "bytes="), "-"))
			if err != nil || n >= len(data) {
				w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", len(data)))
				w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
				finish(416, 0)
				return
			}
			start, code = n, http.StatusPartialContent
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", n, len(data)-1, len(data)))
		}
	}
	body := data[start:]
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	if r.Method == http.MethodHead {
		finish(code, 0)
		return
	}
	if cut >= 0 && cut < len(body) {
		n, _ := w.Write(body[:cut])
		w.(http.Flusher).Flush()
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			fs.t.Errorf("hijack: %v", err)
			return
		}
		conn.Close()
		finish(code, int64(n))
		return
	}
	var n int
	if gate != nil {
		half := len(body) / 2
		m, _ := w.Write(body[:half])
		w.(http.Flusher).Flush()
		gate(r)
		if r.Context().Err() != nil {
			finish(code, int64(m))
			return
		}
		k, _ := w.Write(body[half:])
		n = m + k
	} else {
		n, _ = w.Write(body)
	}
	finish(code, int64(n))
}

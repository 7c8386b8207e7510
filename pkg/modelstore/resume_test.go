package modelstore

// Regression tests of issue 14 item 7: a server that changed a file but kept its
// Last-Modified (and sent no ETag) got a resumed download that matched neither version,
// accepted silently.

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// dateServer serves one file with http.ServeContent — Range and If-Range with the
// Last-Modified date, as a plain file server does — and a fixed modification time, so a
// new content keeps its date. It sends the ETag set (none by default), and cuts the first
// GET after cut bytes.
type dateServer struct {
	srv *httptest.Server

	mu       sync.Mutex
	data     []byte
	etag     string
	cut      int
	requests []seenRequest
	// ignoreIfRange answers a Range with 206 whatever If-Range says (a broken server).
	ignoreIfRange bool
}

var fixedModTime = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

func newDateServer(t *testing.T, data []byte, cut int) *dateServer {
	ds := &dateServer{data: data, cut: cut}
	ds.srv = httptest.NewServer(http.HandlerFunc(ds.serve))
	t.Cleanup(ds.srv.Close)
	return ds
}

func (ds *dateServer) set(data []byte, etag string) {
	ds.mu.Lock()
	ds.data, ds.etag = data, etag
	ds.mu.Unlock()
}

func (ds *dateServer) gets() []seenRequest {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	var out []seenRequest
	for _, r := range ds.requests {
		if r.Method == http.MethodGet {
			out = append(out, r)
		}
	}
	return out
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (w *statusRecorder) WriteHeader(code int) { w.code = code; w.ResponseWriter.WriteHeader(code) }
func (w *statusRecorder) Flush()               { w.ResponseWriter.(http.Flusher).Flush() }

func (ds *dateServer) serve(w http.ResponseWriter, r *http.Request) {
	ds.mu.Lock()
	data, etag, cut, ignore := ds.data, ds.etag, -1, ds.ignoreIfRange
	if r.Method == http.MethodGet && ds.cut > 0 {
		cut, ds.cut = ds.cut, 0
	}
	idx := len(ds.requests)
	ds.requests = append(ds.requests, seenRequest{Method: r.Method, Path: r.URL.Path, Range: r.Header.Get("Range"), IfRange: r.Header.Get("If-Range")})
	ds.mu.Unlock()
	if etag != "" {
		w.Header().Set("ETag", etag)
	}
	if ignore {
		r.Header.Del("If-Range")
	}
	rec := &statusRecorder{ResponseWriter: w, code: 200}
	defer func() { ds.mu.Lock(); ds.requests[idx].Status = rec.code; ds.mu.Unlock() }()
	if cut >= 0 {
		w.Header().Set("Last-Modified", fixedModTime.Format(http.TimeFormat))
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		w.WriteHeader(http.StatusOK)
		w.Write(data[:cut])
		w.(http.Flusher).Flush()
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	http.ServeContent(rec, r, "model.gguf", fixedModTime, bytes.NewReader(data))
}

// interruptedThenChanged downloads version A until the connection is cut mid-way, then
// makes the server serve version B (same size, same Last-Modified).
func interruptedThenChanged(t *testing.T, etagA, etagB string) (*testStore, *dateServer, string, []byte) {
	t.Helper()
	a, b := randomBytes(600_000, 21), randomBytes(600_000, 22)
	ds := newDateServer(t, a, 250_000)
	ds.set(a, etagA)
	u := ds.srv.URL + "/m/model.gguf"
	s := newTestStore(t, TypeLLM, nil)
	if _, err := s.Download(t.Context(), Request{Parts: []Part{{URL: u}}}, nil); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("first attempt: %v, want ErrInterrupted", err)
	}
	if fi, err := os.Stat(s.path("model", "model.gguf"+partialSuffix)); err != nil || fi.Size() != 250_000 {
		t.Fatalf("partial of version A: %v %v", fi, err)
	}
	ds.set(b, etagB)
	return s, ds, u, b
}

func checkIsVersion(t *testing.T, s *testStore, want []byte) {
	t.Helper()
	got, err := os.ReadFile(s.path("model", "model.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("stored file (%d bytes) is not the version served: spliced from two versions", len(got))
	}
}

func TestResumeWithOnlyLastModifiedNeverSplicesTwoVersions(t *testing.T) {
	for _, c := range []struct{ name, etagA, etagB string }{
		{"no ETag", "", ""},
		{"weak ETag", `W/"v"`, `W/"v"`}, // a weak validator cannot guard a range
	} {
		t.Run(c.name, func(t *testing.T) {
			s, ds, u, b := interruptedThenChanged(t, c.etagA, c.etagB)
			rec, err := s.Download(t.Context(), Request{Parts: []Part{{URL: u}}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			gets := ds.gets()
			if len(gets) != 2 || gets[1].Range != "" || gets[1].Status != http.StatusOK {
				t.Fatalf("GETs %+v: the second must start from zero", gets)
			}
			checkIsVersion(t, s, b)
			if rec.Files[0].SHA256 != sha(b) {
				t.Fatalf("record %+v", rec.Files[0])
			}
		})
	}
}

// With a known sha256 the partial is resumed (bytes saved when the file did not change);
// a resume that does not match is downloaded again whole, at once.
func TestResumeWithKnownSHA256IsCheckedAndRestartedOnMismatch(t *testing.T) {
	s, ds, u, b := interruptedThenChanged(t, "", "")
	rec, err := s.Download(t.Context(), Request{Parts: []Part{{URL: u, SHA256: sha(b)}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	gets := ds.gets()
	if len(gets) != 3 || gets[1].Range != "bytes=250000-" || gets[1].Status != http.StatusPartialContent ||
		gets[2].Range != "" || gets[2].Status != http.StatusOK {
		t.Fatalf("GETs %+v: want the resume, then the whole file", gets)
	}
	if !strings.Contains(s.logs.String(), "resumed download does not match the file") {
		t.Fatal("the restart was not logged")
	}
	checkIsVersion(t, s, b)
	if rec.Files[0].SHA256 != sha(b) {
		t.Fatalf("record %+v", rec.Files[0])
	}

	// An unchanged file resumes and is kept.
	a := randomBytes(300_000, 23)
	ds2 := newDateServer(t, a, 100_000)
	u2 := ds2.srv.URL + "/m/model.gguf"
	s2 := newTestStore(t, TypeLLM, nil)
	if _, err := s2.Download(t.Context(), Request{Parts: []Part{{URL: u2, SHA256: sha(a)}}}, nil); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("first attempt: %v", err)
	}
	if _, err := s2.Download(t.Context(), Request{Parts: []Part{{URL: u2, SHA256: sha(a)}}}, nil); err != nil {
		t.Fatal(err)
	}
	if g := ds2.gets(); len(g) != 2 || g[1].Status != http.StatusPartialContent {
		t.Fatalf("GETs %+v: want a resume", g)
	}
	checkIsVersion(t, s2, a)
}

// A strong ETag resumes with If-Range; a server that ignores If-Range and answers the rest
// of another version is caught by the ETag of its answer.
func TestResumeWithStrongETagAgainstAServerIgnoringIfRange(t *testing.T) {
	s, ds, u, b := interruptedThenChanged(t, `"version-a"`, `"version-b"`)
	ds.mu.Lock()
	ds.ignoreIfRange = true
	ds.mu.Unlock()
	if _, err := s.Download(t.Context(), Request{Parts: []Part{{URL: u}}}, nil); err != nil {
		t.Fatal(err)
	}
	gets := ds.gets()
	if len(gets) != 3 || gets[1].IfRange != `"version-a"` || gets[1].Status != http.StatusPartialContent || gets[2].Range != "" {
		t.Fatalf("GETs %+v", gets)
	}
	checkIsVersion(t, s, b)
}

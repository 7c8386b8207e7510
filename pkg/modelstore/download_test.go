package modelstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

type testStore struct {
	*Store
	dataDir string
	logs    *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newTestStore(t *testing.T, typ Type, mod func(*Options)) *testStore {
	t.Helper()
	logs := &syncBuffer{}
	o := Options{
		DataDir:      t.TempDir(),
		Type:         typ,
		Retries:      -1,
		RetryBackoff: time.Millisecond,
		FreeSpace:    func(string) (uint64, error) { return 1 << 40, nil },
		Logger:       slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if mod != nil {
		mod(&o)
	}
	s, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	return &testStore{Store: s, dataDir: o.DataDir, logs: logs}
}

func (s *testStore) path(id, name string) string { return filepath.Join(s.Root(), id, name) }

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// onlyFiles lists the files under root, relative.
func onlyFiles(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(root, p)
			out = append(out, rel)
		}
		return nil
	})
	return out
}

func TestDownloadFullWithProgress(t *testing.T) {
	fs := newFileServer(t)
	data := randomBytes(3<<20+123, 1)
	u := fs.add("/org/tiny-model.Q4_K_M.gguf", data)
	s := newTestStore(t, TypeLLM, func(o *Options) { o.ProgressInterval = time.Nanosecond })

	var events []Progress
	rec, err := s.Download(t.Context(), Request{Parts: []Part{{URL: u, SHA256: "sha256:" + strings.ToUpper(sha(data))}}},
		func(p Progress) { events = append(events, p) })
	if err != nil {
		t.Fatal(err)
	}
	if rec.ID != "tiny-model.q4_k_m" || rec.Type != TypeLLM || len(rec.Files) != 1 {
		t.Fatalf("record: %+v", rec)
	}
	f := rec.Files[0]
	if f.Name != "tiny-model.Q4_K_M.gguf" || f.Size != int64(len(data)) || f.SHA256 != sha(data) || f.URL != u || rec.SourceURL != u {
		t.Fatalf("file record: %+v", f)
	}
	got, err := os.ReadFile(s.path(rec.ID, f.Name))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("stored file differs (err %v)", err)
	}
	if left := onlyFiles(t, s.Root()); len(left) != 2 {
		t.Fatalf("files in store: %v (want the model and its record)", left)
	}
	if len(events) < 3 {
		t.Fatalf("only %d progress events", len(events))
	}
	last := events[len(events)-1]
	if !last.Done || last.Record == nil || last.BytesDone != int64(len(data)) || last.BytesTotal != int64(len(data)) {
		t.Fatalf("final event: %+v", last)
	}
	for i, e := range events {
		if e.BytesTotal != int64(len(data)) || e.ModelID != rec.ID || e.Component != ComponentModel || e.FileCount != 1 || e.ComponentCount != 1 {
			t.Fatalf("event %d: %+v", i, e)
		}
		if i > 0 && e.BytesDone < events[i-1].BytesDone {
			t.Fatalf("progress went back at %d: %d < %d", i, e.BytesDone, events[i-1].BytesDone)
		}
	}
	// The store reads the disk: list, get, usage.
	list, err := s.List(t.Context())
	if err != nil || len(list) != 1 || list[0].ID != rec.ID {
		t.Fatalf("list: %v %v", list, err)
	}
	g, err := s.Get(t.Context(), rec.ID)
	if err != nil || g.Files[0].SHA256 != sha(data) {
		t.Fatalf("get: %+v %v", g, err)
	}
	u2, err := s.StorageUsage(t.Context())
	if err != nil || u2.ModelBytes != int64(len(data)) || u2.ModelCount != 1 || u2.PartialBytes != 0 {
		t.Fatalf("usage: %+v %v", u2, err)
	}
	if _, err := s.Download(t.Context(), Request{Parts: []Part{{URL: u}}}, nil); !errors.Is(err, ErrAlreadyExists) {
		t.Fatalf("second download: %v, want ErrAlreadyExists", err)
	}
}

func TestResumeAfterConnectionCut(t *testing.T) {
	fs := newFileServer(t)
	data := randomBytes(1<<20, 2)
	const path = "/m/resume.gguf"
	u := fs.add(path, data)
	half := len(data) / 2
	fs.set(path, func(f *served) { f.cutAfter = []int{half} })
	s := newTestStore(t, TypeLLM, nil)

	_, err := s.Download(t.Context(), Request{Parts: []Part{{URL: u, SHA256: sha(data)}}}, nil)
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("first attempt: %v, want ErrInterrupted", err)
	}
	partial := s.path("resume", "resume.gguf"+partialSuffix)
	fi, err := os.Stat(partial)
	if err != nil || fi.Size() != int64(half) {
		t.Fatalf("partial after cut: %v %v, want %d bytes", fi, err, half)
	}
	if exists(s.path("resume", "resume.gguf")) || exists(s.path("resume", recordName)) {
		t.Fatal("a final file or record exists after an interrupted download")
	}
	if l, _ := s.List(t.Context()); len(l) != 0 {
		t.Fatalf("unfinished model listed: %v", l)
	}

	rec, err := s.Download(t.Context(), Request{Parts: []Part{{URL: u, SHA256: sha(data)}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	gets := fs.seen(http.MethodGet, path)
	if len(gets) != 2 {
		t.Fatalf("GETs: %+v", gets)
	}
	if gets[1].Range != fmt.Sprintf("bytes=%d-", half) || gets[1].IfRange != fs.file(path).etag || gets[1].Status != http.StatusPartialContent {
		t.Fatalf("resume request: %+v", gets[1])
	}
	if gets[1].Bytes != int64(len(data)-half) || fs.file(path).bytes != int64(len(data)) {
		t.Fatalf("served %d then %d bytes (total %d) for a %d-byte file", gets[0].Bytes, gets[1].Bytes, fs.file(path).bytes, len(data))
	}
	if rec.Files[0].SHA256 != sha(data) || exists(partial) || exists(partial[:len(partial)-len(partialSuffix)]+metaSuffix) {
		t.Fatalf("after resume: %+v, partial left %v", rec.Files[0], exists(partial))
	}
}

func TestRetryResumesWithinOneCall(t *testing.T) {
	fs := newFileServer(t)
	data := randomBytes(512<<10, 3)
	const path = "/m/retry.gguf"
	u := fs.add(path, data)
	fs.set(path, func(f *served) { f.cutAfter = []int{100_000, 200_000} })
	s := newTestStore(t, TypeLLM, func(o *Options) { o.Retries = 2 })
	rec, err := s.Download(t.Context(), Request{Parts: []Part{{URL: u, SHA256: sha(data)}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	gets := fs.seen(http.MethodGet, path)
	if len(gets) != 3 || gets[1].Range != "bytes=100000-" || gets[2].Range != "bytes=300000-" {
		t.Fatalf("GETs: %+v", gets)
	}
	if fs.file(path).bytes != int64(len(data)) || rec.Files[0].Size != int64(len(data)) {
		t.Fatalf("served %d bytes for %d", fs.file(path).bytes, len(data))
	}
}

func TestServerIgnoringRangeRestartsCleanly(t *testing.T) {
	fs := newFileServer(t)
	data := randomBytes(600_000, 4)
	const path = "/m/norange.gguf"
	u := fs.add(path, data)
	fs.set(path, func(f *served) { f.cutAfter = []int{250_000} })
	s := newTestStore(t, TypeLLM, nil)
	if _, err := s.Download(t.Context(), Request{Parts: []Part{{URL: u}}}, nil); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("first: %v", err)
	}
	fs.set(path, func(f *served) { f.ignoreRange = true })
	rec, err := s.Download(t.Context(), Request{Parts: []Part{{URL: u, SHA256: sha(data)}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	gets := fs.seen(http.MethodGet, path)
	if len(gets) != 2 || gets[1].Range == "" || gets[1].Status != http.StatusOK || gets[1].Bytes != int64(len(data)) {
		t.Fatalf("GETs: %+v", gets)
	}
	got, _ := os.ReadFile(s.path(rec.ID, "norange.gguf"))
	if !bytes.Equal(got, data) {
		t.Fatal("file is not the served data: the old prefix was not discarded")
	}
}

func TestChangedETagRestarts(t *testing.T) {
	fs := newFileServer(t)
	old := randomBytes(400_000, 5)
	const path = "/m/changing.gguf"
	u := fs.add(path, old)
	fs.set(path, func(f *served) { f.cutAfter = []int{150_000} })
	s := newTestStore(t, TypeLLM, nil)
	if _, err := s.Download(t.Context(), Request{Parts: []Part{{URL: u}}}, nil); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("first: %v", err)
	}
	oldTag := fs.file(path).etag
	newData := randomBytes(420_000, 6)
	fs.add(path, newData) // new content, new ETag
	rec, err := s.Download(t.Context(), Request{Parts: []Part{{URL: u}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	gets := fs.seen(http.MethodGet, path)
	if len(gets) != 2 || gets[1].IfRange != oldTag || gets[1].Status != http.StatusOK {
		t.Fatalf("GETs: %+v", gets)
	}
	if rec.Files[0].SHA256 != sha(newData) || rec.Files[0].Size != int64(len(newData)) {
		t.Fatalf("record %+v is not of the new content", rec.Files[0])
	}
}

func TestChecksumMismatchDeletesFile(t *testing.T) {
	fs := newFileServer(t)
	data := randomBytes(200_000, 7)
	u := fs.add("/m/bad.gguf", data)
	s := newTestStore(t, TypeLLM, nil)
	wrong := sha(append([]byte{1}, data...))
	_, err := s.Download(t.Context(), Request{Parts: []Part{{URL: u, SHA256: wrong}}}, nil)
	if !errors.Is(err, ErrChecksumMismatch) || !strings.Contains(err.Error(), wrong) || !strings.Contains(err.Error(), sha(data)) {
		t.Fatalf("err = %v", err)
	}
	if left := onlyFiles(t, s.dataDir); len(left) != 0 {
		t.Fatalf("left behind: %v", left)
	}
	if exists(filepath.Join(s.Root(), "bad")) {
		t.Fatal("model directory left behind")
	}
}

func TestSourceErrorsLeaveNothing(t *testing.T) {
	for _, c := range []struct {
		status int
		want   error
	}{{404, ErrSourceNotFound}, {500, ErrSourceUnavailable}, {403, ErrSourceUnauthorized}} {
		t.Run(fmt.Sprint(c.status), func(t *testing.T) {
			fs := newFileServer(t)
			u := fs.add("/m/x.gguf", randomBytes(1000, 8))
			if c.status == 404 {
				u = fs.srv.URL + "/m/missing.gguf"
			} else {
				fs.set("/m/x.gguf", func(f *served) { f.status = c.status })
			}
			s := newTestStore(t, TypeLLM, func(o *Options) { o.Retries = 1 })
			_, err := s.Download(t.Context(), Request{Parts: []Part{{URL: u}}}, nil)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), fmt.Sprint(c.status)) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if left := onlyFiles(t, s.dataDir); len(left) != 0 {
				t.Fatalf("left behind: %v", left)
			}
			if e, _ := os.ReadDir(s.Root()); len(e) != 0 {
				t.Fatalf("store not empty: %v", e)
			}
		})
	}
}

func TestHeadUnsupportedStillDownloads(t *testing.T) {
	fs := newFileServer(t)
	data := randomBytes(70_000, 9)
	u := fs.add("/m/nohead.gguf", data)
	fs.set("/m/nohead.gguf", func(f *served) { f.noHead = true })
	s := newTestStore(t, TypeLLM, nil)
	var last Progress
	rec, err := s.Download(t.Context(), Request{Parts: []Part{{URL: u}}}, func(p Progress) { last = p })
	if err != nil || rec.Files[0].Size != int64(len(data)) || last.BytesTotal != int64(len(data)) {
		t.Fatalf("rec %+v err %v last %+v", rec, err, last)
	}
}

func TestCancelLeavesResumablePartial(t *testing.T) {
	fs := newFileServer(t)
	data := randomBytes(800_000, 10)
	const path = "/m/cancel.gguf"
	u := fs.add(path, data)
	reached := make(chan struct{})
	fs.set(path, func(f *served) {
		f.gate = func(r *http.Request) {
			close(reached)
			<-r.Context().Done()
		}
	})
	s := newTestStore(t, TypeLLM, nil)
	errc := make(chan error, 1)
	go func() {
		_, err := s.Download(context.Background(), Request{Parts: []Part{{URL: u, SHA256: sha(data)}}}, nil)
		errc <- err
	}()
	<-reached
	// The client may still be reading the first half; wait until it is on disk.
	partial := s.path("cancel", "cancel.gguf"+partialSuffix)
	for i := 0; ; i++ {
		if fi, err := os.Stat(partial); err == nil && fi.Size() == int64(len(data)/2) {
			break
		}
		if i > 5000 {
			t.Fatal("first half never reached the disk")
		}
		time.Sleep(time.Millisecond)
	}
	if err := s.CancelDownload(t.Context(), "cancel"); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, ErrCanceled) {
		t.Fatalf("download err = %v, want ErrCanceled", err)
	}
	if !exists(partial) || exists(s.path("cancel", "cancel.gguf")) {
		t.Fatal("cancel must leave just the partial")
	}
	if err := s.CancelDownload(t.Context(), "cancel"); !errors.Is(err, ErrNoDownload) {
		t.Fatalf("cancel again: %v", err)
	}
	fs.set(path, func(f *served) { f.gate = nil })
	if _, err := s.Download(t.Context(), Request{Parts: []Part{{URL: u, SHA256: sha(data)}}}, nil); err != nil {
		t.Fatal(err)
	}
	gets := fs.seen(http.MethodGet, path)
	if want := fmt.Sprintf("bytes=%d-", len(data)/2); gets[len(gets)-1].Range != want {
		t.Fatalf("resume after cancel asked %q, want %q", gets[len(gets)-1].Range, want)
	}
}

func TestCancelBeforeDataLeavesNothing(t *testing.T) {
	fs := newFileServer(t)
	u := fs.add("/m/early.gguf", randomBytes(1000, 11))
	s := newTestStore(t, TypeLLM, nil)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := s.Download(ctx, Request{Parts: []Part{{URL: u}}}, nil)
	if !errors.Is(err, ErrCanceled) {
		t.Fatalf("err = %v", err)
	}
	if left := onlyFiles(t, s.dataDir); len(left) != 0 {
		t.Fatalf("left behind: %v", left)
	}
	if e, _ := os.ReadDir(s.Root()); len(e) != 0 {
		t.Fatalf("store not empty: %v", e)
	}
}

func TestInsufficientSpaceRefusedBeforeDownload(t *testing.T) {
	fs := newFileServer(t)
	data := randomBytes(100_000, 12)
	const path = "/m/big.gguf"
	u := fs.add(path, data)
	var asked string
	s := newTestStore(t, TypeLLM, func(o *Options) {
		o.MinFreeBytes = 1000
		o.FreeSpace = func(dir string) (uint64, error) { asked = dir; return uint64(len(data)) + 999, nil }
	})
	_, err := s.Download(t.Context(), Request{Parts: []Part{{URL: u}}}, nil)
	if !errors.Is(err, ErrInsufficientSpace) {
		t.Fatalf("err = %v", err)
	}
	if !strings.HasPrefix(asked, s.Root()) {
		t.Fatalf("free space asked for %q, not the store", asked)
	}
	if g := fs.seen(http.MethodGet, path); len(g) != 0 {
		t.Fatalf("downloaded despite the refusal: %+v", g)
	}
	if left := onlyFiles(t, s.dataDir); len(left) != 0 {
		t.Fatalf("left behind: %v", left)
	}
	// Exactly enough space passes.
	s2 := newTestStore(t, TypeLLM, func(o *Options) {
		o.MinFreeBytes = 1000
		o.FreeSpace = func(string) (uint64, error) { return uint64(len(data)) + 1000, nil }
	})
	if _, err := s2.Download(t.Context(), Request{Parts: []Part{{URL: u}}}, nil); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentDownloadOfSameID(t *testing.T) {
	fs := newFileServer(t)
	data := randomBytes(300_000, 13)
	const path = "/m/same.gguf"
	u := fs.add(path, data)
	release := make(chan struct{})
	reached := make(chan struct{})
	fs.set(path, func(f *served) {
		f.gate = func(*http.Request) { close(reached); <-release }
	})
	s := newTestStore(t, TypeLLM, nil)
	errc := make(chan error, 1)
	go func() {
		_, err := s.Download(t.Context(), Request{Parts: []Part{{URL: u}}}, nil)
		errc <- err
	}()
	<-reached
	if _, err := s.Download(t.Context(), Request{Parts: []Part{{URL: u}}}, nil); !errors.Is(err, ErrDownloadInProgress) {
		t.Fatalf("second download: %v", err)
	}
	if _, err := s.Delete(t.Context(), "same", false); !errors.Is(err, ErrDownloadInProgress) {
		t.Fatalf("delete during download: %v", err)
	}
	if ids := s.ActiveDownloads(); len(ids) != 1 || ids[0] != "same" {
		t.Fatalf("active: %v", ids)
	}
	fs.set(path, func(f *served) { f.gate = nil })
	close(release)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func TestTokenSentNeverLogged(t *testing.T) {
	fs := newFileServer(t)
	data := randomBytes(10_000, 14)
	fs.add("/org/gated/resolve/main/gated.gguf", data)
	const token = "hf_SECRETtoken123"
	s := newTestStore(t, TypeLLM, func(o *Options) { o.HFBaseURL = fs.srv.URL; o.Retries = 0 })
	rec, err := s.Download(t.Context(), Request{Token: token, Parts: []Part{{HF: &HFFile{Repo: "org/gated", File: "gated.gguf"}}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	gets := fs.seen(http.MethodGet, "/org/gated/resolve/main/gated.gguf")
	if len(gets) != 1 || gets[0].Auth != "Bearer "+token {
		t.Fatalf("GET: %+v", gets)
	}
	b, _ := os.ReadFile(s.path(rec.ID, recordName))
	if strings.Contains(s.logs.String(), token) || strings.Contains(string(b), token) {
		t.Fatal("token leaked into logs or the record")
	}
	// The store-wide HF token goes to the HF host only.
	other := newFileServer(t)
	ou := other.add("/x/other.gguf", data)
	s2 := newTestStore(t, TypeLLM, func(o *Options) { o.HFBaseURL = fs.srv.URL; o.HFToken = token })
	if _, err := s2.Download(t.Context(), Request{Parts: []Part{{URL: ou}}}, nil); err != nil {
		t.Fatal(err)
	}
	if g := other.seen(http.MethodGet, "/x/other.gguf"); g[0].Auth != "" {
		t.Fatalf("HF token sent to another host: %q", g[0].Auth)
	}
}

func TestStalledTransferIsInterrupted(t *testing.T) {
	fs := newFileServer(t)
	data := randomBytes(200_000, 15)
	const path = "/m/stall.gguf"
	u := fs.add(path, data)
	fs.set(path, func(f *served) { f.gate = func(r *http.Request) { <-r.Context().Done() } })
	s := newTestStore(t, TypeLLM, func(o *Options) { o.IdleTimeout = 50 * time.Millisecond })
	_, err := s.Download(t.Context(), Request{Parts: []Part{{URL: u}}}, nil)
	if !errors.Is(err, ErrInterrupted) || !strings.Contains(err.Error(), "idle timeout") {
		t.Fatalf("err = %v", err)
	}
	if fi, err := os.Stat(s.path("stall", "stall.gguf"+partialSuffix)); err != nil || fi.Size() != int64(len(data)/2) {
		t.Fatalf("partial: %v %v", fi, err)
	}
	fs.set(path, func(f *served) { f.gate = nil })
	if _, err := s.Download(t.Context(), Request{Parts: []Part{{URL: u, SHA256: sha(data)}}}, nil); err != nil {
		t.Fatal(err)
	}
}

package modelstore

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/genailab/genailab/pkg/ggufgen"
)

// outsideFile is a file outside the store (another temporary directory), standing
// for /etc/passwd: the tests check that the store neither writes it nor reveals it.
func outsideFile(t *testing.T, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "passwd")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func mustSymlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func assertUnchanged(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("outside file: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("the file outside the store was written: %d bytes, want the original %d", len(got), len(want))
	}
}

// assertRegularFile checks that path is a regular file (not a link) holding want.
func assertRegularFile(t *testing.T, path string, want []byte) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !fi.Mode().IsRegular() {
		t.Fatalf("%s is %s, want a regular file", path, fi.Mode())
	}
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("%s holds %d bytes (%v), want the %d downloaded", path, len(got), err, len(want))
	}
}

// A symlink planted at <model>.partial used to make the download truncate and
// overwrite its target, outside the data dir. Now the link itself is replaced by
// a new file; its target is never opened. With resume metadata planted too, the
// old code would even have appended to the target after its current end.
func TestPlantedPartialSymlinkCannotOverwriteOutsideFile(t *testing.T) {
	for _, withMeta := range []bool{false, true} {
		t.Run("meta="+strconv.FormatBool(withMeta), func(t *testing.T) {
			secret := []byte("root:x:0:0:root:/root:/bin/bash\n")
			victim := outsideFile(t, secret)
			fs := newFileServer(t)
			data := randomBytes(200_000, 70)
			const path = "/m/m.gguf"
			u := fs.add(path, data)
			s := newTestStore(t, TypeLLM, nil)
			mustSymlink(t, victim, s.path("m", "m.gguf"+partialSuffix))
			if withMeta {
				b, _ := json.Marshal(partialMeta{URL: u, ETag: fs.file(path).etag, Size: int64(len(data))})
				if err := os.WriteFile(s.path("m", "m.gguf"+metaSuffix), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}

			rec, err := s.Download(t.Context(), Request{Parts: []Part{{URL: u, SHA256: sha(data)}}}, nil)
			assertUnchanged(t, victim, secret)
			if err != nil {
				t.Fatalf("download with a planted .partial link: %v (replacing the link is expected)", err)
			}
			assertRegularFile(t, s.path("m", "m.gguf"), data)
			if exists(s.path("m", "m.gguf"+partialSuffix)) {
				t.Fatal("the planted link is still there")
			}
			if rec.Files[0].SHA256 != sha(data) {
				t.Fatalf("record %+v", rec.Files[0])
			}
			for _, g := range fs.seen(http.MethodGet, path) {
				if g.Range != "" {
					t.Fatalf("resumed from the link's target: %+v", g)
				}
			}
			if !strings.Contains(s.logs.String(), "not a regular file of its own") {
				t.Fatalf("the replaced link was not logged:\n%s", s.logs.String())
			}
		})
	}
}

// A hard link to a file elsewhere, planted at <model>.partial with resume
// metadata, is not resumed (that would write into the shared file): it is removed
// and the download starts from zero.
func TestPlantedHardLinkedPartialIsNotResumed(t *testing.T) {
	secret := bytes.Repeat([]byte("secret "), 1000)
	victim := outsideFile(t, secret)
	fs := newFileServer(t)
	data := randomBytes(100_000, 71)
	const path = "/h/h.gguf"
	u := fs.add(path, data)
	s := newTestStore(t, TypeLLM, nil)
	if err := os.MkdirAll(filepath.Join(s.Root(), "h"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(victim, s.path("h", "h.gguf"+partialSuffix)); err != nil {
		t.Skipf("no hard link across the temporary directories: %v", err)
	}
	b, _ := json.Marshal(partialMeta{URL: u, ETag: fs.file(path).etag, Size: int64(len(data))})
	if err := os.WriteFile(s.path("h", "h.gguf"+metaSuffix), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Download(t.Context(), Request{Parts: []Part{{URL: u}}}, nil); err != nil {
		t.Fatal(err)
	}
	assertUnchanged(t, victim, secret)
	assertRegularFile(t, s.path("h", "h.gguf"), data)
	if g := fs.seen(http.MethodGet, path); len(g) != 1 || g[0].Range != "" {
		t.Fatalf("GETs %+v, want one without a range", g)
	}
}

// A symlink planted where a model's final file goes, to a file outside of the
// size the server reports, used to be taken for the finished file: hashed and
// reused, the model "downloaded" as /etc/passwd. Now it is replaced by the
// download.
func TestPlantedFinalSymlinkIsReplacedNotReused(t *testing.T) {
	secret := randomBytes(50_000, 72)
	victim := outsideFile(t, secret)
	fs := newFileServer(t)
	data := randomBytes(len(secret), 73) // the same size: the old reuse check matched
	const path = "/f/f.gguf"
	u := fs.add(path, data)
	s := newTestStore(t, TypeLLM, nil)
	mustSymlink(t, victim, s.path("f", "f.gguf"))
	rec, err := s.Download(t.Context(), Request{Parts: []Part{{URL: u}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	assertUnchanged(t, victim, secret)
	assertRegularFile(t, s.path("f", "f.gguf"), data)
	if rec.Files[0].SHA256 != sha(data) || strings.Contains(s.logs.String(), sha(secret)) {
		t.Fatalf("the outside file was reused or hashed: %+v", rec.Files[0])
	}
	if len(fs.seen(http.MethodGet, path)) != 1 {
		t.Fatal("the file was not downloaded")
	}
}

// A model directory that is a symlink to a directory outside: Download refuses it
// (ErrOutsideStore) and writes nothing there; the server is not asked.
func TestDownloadRefusesPlantedModelDirSymlink(t *testing.T) {
	outDir := t.TempDir()
	fs := newFileServer(t)
	u := fs.add("/d/d.gguf", randomBytes(10_000, 74))
	s := newTestStore(t, TypeLLM, nil)
	mustSymlink(t, outDir, filepath.Join(s.Root(), "d"))
	if _, err := s.Download(t.Context(), Request{ID: "d", Parts: []Part{{URL: u}}}, nil); !errors.Is(err, ErrOutsideStore) {
		t.Fatalf("Download: %v, want ErrOutsideStore", err)
	}
	if left, _ := os.ReadDir(outDir); len(left) != 0 {
		t.Fatalf("written outside the store: %v", left)
	}
	if len(fs.requests) != 0 {
		t.Fatalf("the server was asked: %+v", fs.requests)
	}
}

// Import likewise; and Delete removes such a link itself, not what it points to.
func TestImportRefusesPlantedModelDirSymlink(t *testing.T) {
	outDir := t.TempDir()
	s := newTestStore(t, TypeLLM, nil)
	mustSymlink(t, outDir, filepath.Join(s.Root(), "d"))
	src := filepath.Join(t.TempDir(), "d.gguf")
	if err := os.WriteFile(src, []byte("model bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Import(t.Context(), "d", "", src); !errors.Is(err, ErrOutsideStore) {
		t.Fatalf("Import: %v, want ErrOutsideStore", err)
	}
	if left, _ := os.ReadDir(outDir); len(left) != 0 {
		t.Fatalf("written outside the store: %v", left)
	}
	if err := os.WriteFile(filepath.Join(outDir, "keep"), []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(t.Context(), "d", true); err != nil {
		t.Fatalf("Delete of the planted link: %v", err)
	}
	if exists(filepath.Join(s.Root(), "d")) {
		t.Fatal("the link is still there")
	}
	assertUnchanged(t, filepath.Join(outDir, "keep"), []byte("keep"))
}

// Verify of a model whose file was replaced by a symlink to /etc/passwd used to
// report that file's size and sha256. Now it fails with ErrOutsideStore and says
// nothing of it; so does a model whose record is such a link.
func TestVerifyDoesNotRevealFileOutsideStore(t *testing.T) {
	secret := randomBytes(12_345, 75)
	victim := outsideFile(t, secret)
	fs := newFileServer(t)
	data := randomBytes(30_000, 76)
	s := newTestStore(t, TypeLLM, nil)
	if _, err := s.Download(t.Context(), Request{ID: "v", Parts: []Part{{URL: fs.add("/v/v.gguf", data)}}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(s.path("v", "v.gguf")); err != nil {
		t.Fatal(err)
	}
	mustSymlink(t, victim, s.path("v", "v.gguf"))

	rep, err := s.Verify(t.Context(), "v")
	if !errors.Is(err, ErrOutsideStore) || rep != nil {
		t.Fatalf("Verify: %+v, %v; want ErrOutsideStore and no report", rep, err)
	}
	for _, leak := range []string{sha(secret), strconv.Itoa(len(secret))} {
		if strings.Contains(err.Error(), leak) || strings.Contains(s.logs.String(), leak) {
			t.Fatalf("the outside file's %q is revealed: %v\n%s", leak, err, s.logs.String())
		}
	}
	if !strings.Contains(err.Error(), "v.gguf") || !strings.Contains(err.Error(), "out of the model store") {
		t.Fatalf("unclear error: %v", err)
	}
	// A link inside the store is followed as before.
	if err := os.Remove(s.path("v", "v.gguf")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.path("v", "v.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	mustSymlink(t, "v.bin", s.path("v", "v.gguf"))
	if rep, err := s.Verify(t.Context(), "v"); err != nil || !rep.OK {
		t.Fatalf("Verify through a link inside the store: %+v %v", rep, err)
	}

	// The record itself a link out of the store: not read.
	rec, err := os.ReadFile(s.path("v", recordName))
	if err != nil {
		t.Fatal(err)
	}
	outRecord := outsideFile(t, rec)
	if err := os.Remove(s.path("v", recordName)); err != nil {
		t.Fatal(err)
	}
	mustSymlink(t, outRecord, s.path("v", recordName))
	if _, err := s.Verify(t.Context(), "v"); !errors.Is(err, ErrOutsideStore) {
		t.Fatalf("Verify with a record link: %v, want ErrOutsideStore", err)
	}
	if l, err := s.List(t.Context()); err != nil || len(l) != 0 {
		t.Fatalf("List: %v %v, want the model skipped", l, err)
	}
}

// Import into a model directory (left by an unfinished download) whose destination
// file is a symlink to a file outside: the link is replaced, the outside file is
// neither written nor read.
func TestImportReplacesPlantedSymlink(t *testing.T) {
	secret := []byte("do not touch\n")
	victim := outsideFile(t, secret)
	src := filepath.Join(t.TempDir(), "tiny.gguf")
	if err := ggufgen.WriteFile(src, ggufgen.DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	s := newTestStore(t, TypeLLM, nil)
	mustSymlink(t, victim, s.path("tiny", "tiny.gguf"))
	rec, err := s.Import(t.Context(), "tiny", "", src)
	if err != nil {
		t.Fatal(err)
	}
	assertUnchanged(t, victim, secret)
	assertRegularFile(t, s.path("tiny", "tiny.gguf"), want)
	if rec.Files[0].SHA256 != sha(want) || rec.GGUF == nil {
		t.Fatalf("record %+v (%s)", rec.Files[0], rec.GGUFError)
	}
	if rep, err := s.Verify(t.Context(), "tiny"); err != nil || !rep.OK {
		t.Fatalf("Verify: %+v %v", rep, err)
	}
}

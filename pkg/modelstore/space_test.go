package modelstore

// Regression tests of issue 14 item 8: ENOSPC mid-download left a 280 MB .partial filling
// the disk until the model was deleted, and the fixed 256 MiB reserve refused every
// download on small disks.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// diskOf fails writes with ENOSPC once room bytes were written (an injected full disk).
type diskOf struct {
	w    io.Writer
	room *int
}

func (d diskOf) Write(p []byte) (int, error) {
	if len(p) <= *d.room {
		*d.room -= len(p)
		return d.w.Write(p)
	}
	n, _ := d.w.Write(p[:*d.room])
	*d.room = 0
	return n, &os.PathError{Op: "write", Path: "model.partial", Err: syscall.ENOSPC}
}

// checkNoSpaceError checks the error of a download that filled the disk and that it left
// nothing behind.
func checkNoSpaceError(t *testing.T, s *testStore, err error, needs string) {
	t.Helper()
	if !errors.Is(err, ErrInsufficientSpace) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("err = %v, want ErrInsufficientSpace wrapping ENOSPC", err)
	}
	for _, want := range []string{"it needs " + needs, "the partial file was removed", "free now"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not say %q", err, want)
		}
	}
	if left := onlyFiles(t, s.dataDir); len(left) != 0 {
		t.Fatalf("left behind: %v", left)
	}
}

func TestDiskFullMidDownloadRemovesThePartialAndSaysWhatItNeeds(t *testing.T) {
	fs := newFileServer(t)
	data := randomBytes(3<<20, 31)
	u := fs.add("/m/full.gguf", data)
	room := 1 << 20
	s := newTestStore(t, TypeLLM, func(o *Options) { o.Retries = 2 })
	s.wrapWriter = func(w io.Writer) io.Writer { return diskOf{w: w, room: &room} }
	_, err := s.Download(t.Context(), Request{Parts: []Part{{URL: u, SHA256: sha(data)}}}, nil)
	checkNoSpaceError(t, s, err, "3.0 MiB")
	if g := fs.seen(http.MethodGet, "/m/full.gguf"); len(g) != 1 {
		t.Fatalf("a full disk was retried: %d GETs", len(g))
	}
}

// The same on a real full file system: a 1 MiB tmpfs (root only; skipped elsewhere), and a
// server that tells no size, so that no check can refuse the download before it fills the
// disk.
func TestDiskFullMidDownloadOnRealTmpfs(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs here (needs root and CAP_SYS_ADMIN): %v: %s", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	data := randomBytes(3<<20, 32)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		w.WriteHeader(http.StatusOK) // chunked: no Content-Length
		for off := 0; off < len(data); off += 64 << 10 {
			if _, err := w.Write(data[off : off+64<<10]); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	}))
	t.Cleanup(srv.Close)
	s := newTestStore(t, TypeLLM, func(o *Options) {
		o.DataDir = dir
		o.FreeSpace = StatfsFreeSpace
		o.MinFreeBytes = 1 // the reserve is another test's matter
	})
	t.Cleanup(func() { s.dir.Close() }) // before the umount
	_, err := s.Download(t.Context(), Request{Parts: []Part{{URL: srv.URL + "/m/chunked.gguf"}}}, nil)
	checkNoSpaceError(t, s, err, "more than the")
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	used := (st.Blocks - st.Bfree) * uint64(st.Bsize)
	t.Logf("error: %v; tmpfs used afterwards: %d bytes", err, used)
	if used > 64<<10 {
		t.Fatalf("%d bytes still used on the tmpfs after the failed download", used)
	}
}

// The default reserve is 5 % of the volume, at most 1 GiB; MinFreeBytes overrides it.
func TestSmallDiskIsNotRefusedByAFixedReserve(t *testing.T) {
	const MiB, GiB = 1 << 20, 1 << 30
	for _, c := range []struct{ volume, want uint64 }{
		{1 * GiB, GiB / 100 * 5}, {8 * GiB, 8 * GiB / 100 * 5}, {100 * GiB, GiB}, {4 << 40, GiB},
	} {
		s := newTestStore(t, TypeLLM, func(o *Options) { o.VolumeSize = func(string) (uint64, error) { return c.volume, nil } })
		if got := s.reserve(s.Root()); got != c.want {
			t.Errorf("volume %d: reserve %d, want %d", c.volume, got, c.want)
		}
	}
	fs := newFileServer(t)
	data := randomBytes(100_000, 33)
	u := fs.add("/m/small.gguf", data)
	// A 1 GiB disk with 200 MiB free: the old fixed 256 MiB reserve refused this.
	small := func(o *Options) {
		o.VolumeSize = func(string) (uint64, error) { return GiB, nil }
		o.FreeSpace = func(string) (uint64, error) { return 200 * MiB, nil }
	}
	s := newTestStore(t, TypeLLM, small)
	if _, err := s.Download(t.Context(), Request{Parts: []Part{{URL: u}}}, nil); err != nil {
		t.Fatalf("a small disk with room: %v", err)
	}
	s = newTestStore(t, TypeLLM, func(o *Options) { small(o); o.MinFreeBytes = 256 * MiB })
	_, err := s.Download(t.Context(), Request{Parts: []Part{{URL: u}}}, nil)
	if !errors.Is(err, ErrInsufficientSpace) || !strings.Contains(err.Error(), "256.0 MiB reserve (-min-free-bytes)") {
		t.Fatalf("an explicit reserve: %v", err)
	}
	fmt.Fprint(io.Discard, err)
}

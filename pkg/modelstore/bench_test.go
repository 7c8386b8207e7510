package modelstore

import (
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

const benchSize = 32 << 20

// BenchmarkDownload measures a full store download (HEAD, GET, hash, fsync,
// rename, record) over loopback.
func BenchmarkDownload(b *testing.B) {
	fs := newFileServer(b)
	u := fs.add("/b/bench.gguf", randomBytes(benchSize, 99))
	s, err := Open(Options{DataDir: b.TempDir(), Type: TypeLLM, FreeSpace: func(string) (uint64, error) { return 1 << 40, nil }})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(benchSize)
	for i := 0; b.Loop(); i++ {
		if _, err := s.Download(b.Context(), Request{ID: fmt.Sprint("b", i), Parts: []Part{{URL: u}}}, func(Progress) {}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBaselineCopy is the floor: GET, sha256 and write to a file.
func BenchmarkBaselineCopy(b *testing.B) {
	fs := newFileServer(b)
	u := fs.add("/b/bench.gguf", randomBytes(benchSize, 99))
	dir := b.TempDir()
	b.SetBytes(benchSize)
	for i := 0; b.Loop(); i++ {
		resp, err := http.Get(u)
		if err != nil {
			b.Fatal(err)
		}
		f, err := os.Create(filepath.Join(dir, fmt.Sprint(i)))
		if err != nil {
			b.Fatal(err)
		}
		h := sha256.New()
		if _, err := io.Copy(io.MultiWriter(f, h), resp.Body); err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		f.Close()
	}
}

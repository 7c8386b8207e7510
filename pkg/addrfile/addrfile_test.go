package addrfile_test

import (
	"path/filepath"
	"testing"

	"github.com/genailab/genailab/pkg/addrfile"
)

func TestWriteRead(t *testing.T) {
	p := filepath.Join(t.TempDir(), "svc.addr")
	if got := addrfile.Read(p); got != "" {
		t.Fatalf("missing file: %q", got)
	}
	if err := addrfile.Write(p, "127.0.0.1:1234"); err != nil {
		t.Fatal(err)
	}
	if err := addrfile.Write(p, "127.0.0.1:5678"); err != nil {
		t.Fatal(err)
	}
	if got := addrfile.Read(p); got != "127.0.0.1:5678" {
		t.Fatalf("got %q", got)
	}
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(p), ".*")); len(m) != 0 {
		t.Fatalf("temporary files left: %v", m)
	}
}

func TestWriteIntoMissingDirFails(t *testing.T) {
	if err := addrfile.Write(filepath.Join(t.TempDir(), "nope", "svc.addr"), "x"); err == nil {
		t.Fatal("want an error")
	}
}

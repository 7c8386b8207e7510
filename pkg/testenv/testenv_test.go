package testenv

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestFindSDCPPHonoursTheDirVariable(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(SDCPPDirEnv, dir)
	if _, err := FindSDCPP(); err == nil || errors.Is(err, ErrMissing) {
		t.Fatalf("an empty configured directory must be an error, not a skip: %v", err)
	}
	for _, n := range []string{"sd-cli", "sd-server"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("#!/bin/false\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s, err := FindSDCPP()
	if err != nil {
		t.Fatal(err)
	}
	if s.CLI != filepath.Join(dir, "sd-cli") || s.Server != filepath.Join(dir, "sd-server") {
		t.Fatalf("%+v", s)
	}
}

func TestNeedFailsOnErrorsThatAreNotMissing(t *testing.T) {
	// Need on a non-ErrMissing error must call Fatalf: observe it through a recorder.
	r := &recorder{}
	func() {
		defer func() { _ = recover() }()
		Need(r, RequireSDCPPEnv, errors.New("go build failed"))
	}()
	if !r.failed || r.skipped {
		t.Fatalf("failed=%v skipped=%v", r.failed, r.skipped)
	}
	t.Setenv(RequireSDCPPEnv, "")
	r = &recorder{}
	func() {
		defer func() { _ = recover() }()
		Need(r, RequireSDCPPEnv, ErrMissing)
	}()
	if r.failed || !r.skipped {
		t.Fatalf("missing without the require variable: failed=%v skipped=%v", r.failed, r.skipped)
	}
	t.Setenv(RequireSDCPPEnv, "1")
	r = &recorder{}
	func() {
		defer func() { _ = recover() }()
		Need(r, RequireSDCPPEnv, ErrMissing)
	}()
	if !r.failed || r.skipped {
		t.Fatalf("missing with the require variable: failed=%v skipped=%v", r.failed, r.skipped)
	}
}

// recorder is a testing.TB that records Fatalf/Skipf and stops the call with a panic.
type recorder struct {
	testing.TB
	failed, skipped bool
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(string, ...any) {
	r.failed = true
	panic("fatal")
}
func (r *recorder) Skipf(string, ...any) {
	r.skipped = true
	panic("skip")
}

func TestTinySDModelIsCachedByItsSum(t *testing.T) {
	t.Setenv(CacheDirEnv, t.TempDir())
	if _, err := SharedDir(); err != nil {
		Need(t, RequireSDCPPEnv, err)
	}
	p, err := tinySDModel()
	if err != nil {
		t.Fatal(err)
	}
	if sum, _ := fileSHA256(p); sum != TinySDSHA256 {
		t.Fatalf("sum %s", sum)
	}
	// A corrupted cache entry is regenerated.
	if err := os.WriteFile(p, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	p2, err := tinySDModel()
	if err != nil {
		t.Fatal(err)
	}
	if sum, _ := fileSHA256(p2); p2 != p || sum != TinySDSHA256 {
		t.Fatalf("after corruption: %s %s", p2, sum)
	}
}

package execfile_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/genailab/genailab/pkg/execfile"
)

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	if err := os.WriteFile(p("prog"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p("data"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(p("prog"), p("link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(p("dir"), p("dirlink")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(p("dir"), 0o755); err != nil {
		t.Fatal(err)
	}

	for _, n := range []string{"prog", "link"} {
		got, err := execfile.Check(p(n))
		if err != nil || got != p(n) || !execfile.Is(p(n)) {
			t.Errorf("%s: %q, %v", n, got, err)
		}
	}
	for n, want := range map[string]string{"data": "no execute permission", "dir": "a directory", "dirlink": "a directory"} {
		_, err := execfile.Check(p(n))
		if !errors.Is(err, execfile.ErrNotExecutable) || !strings.Contains(err.Error(), p(n)) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want ErrNotExecutable naming the path and %q", n, err, want)
		}
		if execfile.Is(p(n)) {
			t.Errorf("%s: Is says true", n)
		}
	}
	if _, err := execfile.Check(p("missing")); !errors.Is(err, fs.ErrNotExist) || errors.Is(err, execfile.ErrNotExecutable) {
		t.Errorf("missing: %v", err)
	}
}

// A relative path comes back absolute (the lookups hand it to exec and to logs).
func TestCheckReturnsAnAbsolutePath(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "prog"), nil, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	got, err := execfile.Check("prog")
	if err != nil || got != filepath.Join(dir, "prog") {
		t.Fatalf("%q, %v", got, err)
	}
}

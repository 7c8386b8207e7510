package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeMod(t *testing.T, dir, content string) string {
	t.Helper()
	d := filepath.Join(dir, filepath.FromSlash(strings.SplitN(content, "\n", 2)[0][len("module "):]))
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "go.mod"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDriftReportsDifferentVersionsAndIgnoresOwnModules(t *testing.T) {
	root := t.TempDir()
	a := writeMod(t, root, "module a\n\ngo 1.26\n\nrequire (\n\tgoogle.golang.org/grpc v1.84.0\n\tgithub.com/genailab/genailab/pkg v0.0.0\n\tgolang.org/x/sys v0.50.0 // indirect\n)\n")
	b := writeMod(t, root, "module b\n\ngo 1.26\n\nrequire (\n\tgoogle.golang.org/grpc v1.85.0\n\tgithub.com/genailab/genailab/pkg v0.0.0-00010101000000-000000000000\n\tgolang.org/x/sys v0.50.0\n)\n")
	mods, err := readModules([]string{a, b})
	if err != nil {
		t.Fatal(err)
	}
	ds := drift(mods, "github.com/genailab/genailab")
	if len(ds) != 1 || ds[0].path != "google.golang.org/grpc" || ds[0].newest != "v1.85.0" {
		t.Fatalf("drift = %+v, want only google.golang.org/grpc with newest v1.85.0", ds)
	}
	var out strings.Builder
	if n := report(&out, ds); n != 1 || !strings.Contains(out.String(), "v1.84.0  <- behind") {
		t.Fatalf("report = %d, %q", n, out.String())
	}
}

func TestDriftAlignedIsEmpty(t *testing.T) {
	root := t.TempDir()
	a := writeMod(t, root, "module a\n\ngo 1.26\n\nrequire google.golang.org/grpc v1.85.0\n")
	b := writeMod(t, root, "module b\n\ngo 1.26\n\nrequire google.golang.org/grpc v1.85.0 // indirect\n")
	mods, err := readModules([]string{a, b})
	if err != nil {
		t.Fatal(err)
	}
	if ds := drift(mods, "github.com/genailab/genailab"); len(ds) != 0 {
		t.Fatalf("drift = %+v, want none", ds)
	}
}

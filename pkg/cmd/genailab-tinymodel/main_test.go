package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/genailab/genailab/pkg/ggufgen"
)

func TestRunWritesModel(t *testing.T) {
	p := filepath.Join(t.TempDir(), "m.gguf")
	var out, errb bytes.Buffer
	args := []string{"-o", p, "-seed", "5", "-layers", "1", "-dim", "32", "-heads", "2", "-ffn", "64", "-ctx", "64", "-vocab-pieces", "10", "-type", "f16"}
	if err := run(args, &out, &errb); err != nil {
		t.Fatalf("run: %v (%s)", err, errb.String())
	}
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	cfg := ggufgen.Config{Seed: 5, Layers: 1, Dim: 32, Heads: 2, FFN: 64, Context: 64, VocabPieces: 10, Type: ggufgen.F16}
	if _, err := ggufgen.Write(&want, cfg); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatal("command output differs from ggufgen.Write with the same config")
	}
	if !strings.Contains(out.String(), p) {
		t.Fatalf("stdout %q does not name the file", out.String())
	}
}

func TestRunRejectsBadInput(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{},
		{"-o", filepath.Join(dir, "a.gguf"), "-type", "q4"},
		{"-o", filepath.Join(dir, "b.gguf"), "-dim", "30"},
		{"-o", filepath.Join(dir, "c.gguf"), "extra"},
	} {
		if err := run(args, &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
			t.Errorf("run(%q): want error", args)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("left files: %v", ents)
	}
}

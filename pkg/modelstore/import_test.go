package modelstore_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/genailab/genailab/pkg/ggufgen"
	"github.com/genailab/genailab/pkg/modelfile"
	"github.com/genailab/genailab/pkg/modelstore"
)

func TestImportLocalGGUF(t *testing.T) {
	src := filepath.Join(t.TempDir(), "tiny.gguf")
	if err := ggufgen.WriteFile(src, ggufgen.DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	s, err := modelstore.Open(modelstore.Options{DataDir: data, Type: modelstore.TypeLLM})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := s.Import(context.Background(), "tiny-test", "Tiny random-weight test model", src)
	if err != nil {
		t.Fatal(err)
	}
	want, size, err := modelstore.HashFile(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Files) != 1 || rec.Files[0].SHA256 != want || rec.Files[0].Size != size || rec.Files[0].Component != modelstore.ComponentModel {
		t.Fatalf("record files %+v, want sha %s size %d", rec.Files, want, size)
	}
	if rec.GGUF == nil || rec.GGUF.Architecture != "llama" {
		t.Fatalf("GGUF metadata missing: %+v (%s)", rec.GGUF, rec.GGUFError)
	}
	got, err := s.Get(context.Background(), "tiny-test")
	if err != nil || got.Name != "Tiny random-weight test model" {
		t.Fatalf("Get: %+v %v", got, err)
	}
	p, err := s.FilePath("tiny-test", "tiny.gguf")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("imported file: %v", err)
	}
	if _, err := s.Import(context.Background(), "tiny-test", "", src); !errors.Is(err, modelstore.ErrAlreadyExists) {
		t.Fatalf("second import: %v, want ErrAlreadyExists", err)
	}
}

func TestImportRefusesBadInputAndLeavesNothing(t *testing.T) {
	data := t.TempDir()
	s, err := modelstore.Open(modelstore.Options{DataDir: data, Type: modelstore.TypeLLM})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Import(context.Background(), "../evil", "", "/etc/hostname"); !errors.Is(err, modelstore.ErrInvalidID) {
		t.Fatalf("traversal id: %v", err)
	}
	if _, err := s.Import(context.Background(), "missing", "", filepath.Join(t.TempDir(), "nope.gguf")); err == nil {
		t.Fatal("missing source must fail")
	}
	if _, err := os.Stat(filepath.Join(s.Root(), "missing")); !os.IsNotExist(err) {
		t.Fatalf("a failed import left its directory: %v", err)
	}
	list, err := s.List(context.Background())
	if err != nil || len(list) != 0 {
		t.Fatalf("List after failed imports: %v %v", list, err)
	}
}

// Regression: the store accepted truncated and random-byte model files without complaint, and
// the engines then aborted mid-load (sd-cli: SIGABRT) or died on the first image (sd-server).
func TestImportRefusesTruncatedAndGarbageModels(t *testing.T) {
	s, err := modelstore.Open(modelstore.Options{DataDir: t.TempDir(), Type: modelstore.TypeDiffusion})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "good.gguf")
	if err := ggufgen.WriteFile(good, ggufgen.DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"truncated.gguf": b[:len(b)*2/3],
		"garbage.gguf":   bytes.Repeat([]byte("not a model "), 1000),
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		id := strings.TrimSuffix(name, ".gguf")
		if _, err := s.Import(context.Background(), id, "", p); !errors.Is(err, modelfile.ErrInvalid) {
			t.Errorf("%s: %v, want modelfile.ErrInvalid", name, err)
		}
		if _, err := s.Get(context.Background(), id); !errors.Is(err, modelstore.ErrNotFound) {
			t.Errorf("%s: a refused import left a record: %v", name, err)
		}
		if _, err := os.Stat(filepath.Join(s.Root(), id)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: a refused import left its directory: %v", name, err)
		}
	}
	if _, err := s.Import(context.Background(), "good", "", good); err != nil {
		t.Fatalf("a whole model: %v", err)
	}
}

package modelstore_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/genailab/genailab/pkg/ggufgen"
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

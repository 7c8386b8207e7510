package sdmodel

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

func TestInspect(t *testing.T) {
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	if err := WriteTestModel(p("ok.gguf")); err != nil {
		t.Fatal(err)
	}
	if err := WriteTruncatedModel(p("cut.gguf")); err != nil {
		t.Fatal(err)
	}
	full, _ := os.ReadFile(p("ok.gguf"))
	_ = os.WriteFile(p("garbage.bin"), []byte("not a model at all, just some bytes"), 0o644)
	_ = os.WriteFile(p("header-cut.gguf"), full[:40], 0o644)
	_ = os.WriteFile(p("badversion.gguf"), append([]byte("GGUF\x09\x00\x00\x00"), full[8:]...), 0o644)
	hdr := []byte(`{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"__metadata__":{"a":"b"}}`)
	st := binary.LittleEndian.AppendUint64(nil, uint64(len(hdr)))
	st = append(append(st, hdr...), make([]byte, 16)...)
	_ = os.WriteFile(p("ok.safetensors"), st, 0o644)
	_ = os.WriteFile(p("cut.safetensors"), st[:len(st)-1], 0o644)
	_ = os.Mkdir(p("dir"), 0o755)

	for name, want := range map[string]Kind{
		"ok.gguf": Valid, "cut.gguf": Truncated, "garbage.bin": UnknownFormat, "header-cut.gguf": UnknownFormat,
		"badversion.gguf": UnknownFormat, "ok.safetensors": Valid, "cut.safetensors": Truncated,
		"dir": UnknownFormat, "missing.gguf": NotFound,
	} {
		if got := Inspect(p(name)); got.Kind != want {
			t.Errorf("%s: %v (%s), want %v", name, got.Kind, got.Describe(), want)
		}
	}
	if i := Inspect(p("ok.gguf")); i.Format != "gguf" || i.TensorCount != len(TestTensors) || i.DataEnd != i.Size {
		t.Errorf("ok.gguf: %+v", i)
	}
}

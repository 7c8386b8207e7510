package sdmodel

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/genailab/genailab/pkg/modelfile"
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
	if i := Inspect(p("ok.gguf")); i.Format != "gguf" || i.TensorCount != len(DemoModel.Tensors) || i.DataEnd != i.Size {
		t.Errorf("ok.gguf: %+v", i)
	}
}

// The demo model (written by pkg/ggufgen) is a whole GGUF by pkg/modelfile's check, which the
// service runs before an engine loads a file; its truncated twin is not. Its bytes are pinned:
// they are the stand-ins' model since before ggufgen wrote it.
func TestDemoModelPassesModelfileCheck(t *testing.T) {
	dir := t.TempDir()
	ok, cut := filepath.Join(dir, "demo.gguf"), filepath.Join(dir, "cut.gguf")
	if err := WriteTestModel(ok); err != nil {
		t.Fatal(err)
	}
	if err := WriteTruncatedModel(cut); err != nil {
		t.Fatal(err)
	}
	if err := modelfile.Check(ok); err != nil {
		t.Errorf("demo model: %v", err)
	}
	if err := modelfile.Check(cut); !errors.Is(err, modelfile.ErrInvalid) {
		t.Errorf("truncated demo model: %v, want modelfile.ErrInvalid", err)
	}
	data, err := os.ReadFile(ok)
	if err != nil {
		t.Fatal(err)
	}
	const want = "c537cd8d71a67aa2bbf5a385b23cbef9147ffea459bba2f1a0a3692024b6f218"
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != want {
		t.Errorf("demo model sha256 %x (%d bytes), want %s", sum, len(data), want)
	}
}

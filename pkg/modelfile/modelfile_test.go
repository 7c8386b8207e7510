package modelfile

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/genailab/genailab/pkg/ggufgen"
)

func writeGGUF(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "m.gguf")
	if err := ggufgen.WriteFile(p, ggufgen.DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheckGGUF(t *testing.T) {
	dir := t.TempDir()
	p := writeGGUF(t, dir)
	if err := Check(p); err != nil {
		t.Fatalf("whole file: %v", err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"truncated.gguf":   b[:len(b)-100],
		"header-only.gguf": b[:len(b)/50],
		"empty.gguf":       nil,
		"garbage.gguf":     []byte("this is not a model at all, just text that is long enough"),
	} {
		q := filepath.Join(dir, name)
		if err := os.WriteFile(q, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := Check(q); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

func safetensors(t *testing.T, path, header string, data int) {
	t.Helper()
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	b = append(b, make([]byte, data)...)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCheckSafetensors(t *testing.T) {
	dir := t.TempDir()
	hdr := `{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[2],"data_offsets":[16,24]}}`
	ok := filepath.Join(dir, "ok.safetensors")
	safetensors(t, ok, hdr, 24)
	if err := Check(ok); err != nil {
		t.Fatalf("whole file: %v", err)
	}
	short := filepath.Join(dir, "short.safetensors")
	safetensors(t, short, hdr, 20)
	if err := Check(short); !errors.Is(err, ErrInvalid) {
		t.Errorf("truncated: %v", err)
	}
	junk := filepath.Join(dir, "junk.safetensors")
	if err := os.WriteFile(junk, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 1, 2, 3}, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Check(junk); !errors.Is(err, ErrInvalid) {
		t.Errorf("junk: %v", err)
	}
	notJSON := filepath.Join(dir, "notjson.safetensors")
	safetensors(t, notJSON, "{not json", 8)
	if err := Check(notJSON); !errors.Is(err, ErrInvalid) {
		t.Errorf("not json: %v", err)
	}
}

func TestCheckAcceptsFormatsItDoesNotKnow(t *testing.T) {
	p := filepath.Join(t.TempDir(), "model.ckpt")
	if err := os.WriteFile(p, []byte("PK\x03\x04 a pickle zip"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Check(p); err != nil {
		t.Fatal(err)
	}
	if err := Check(filepath.Join(t.TempDir(), "missing.gguf")); err == nil || errors.Is(err, ErrInvalid) {
		t.Fatalf("missing file: %v", err)
	}
}

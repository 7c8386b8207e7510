package ggufgen

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	parser "github.com/gpustack/gguf-parser-go"
)

var testLayout = Layout{
	Architecture: "test-arch",
	Name:         "layout test",
	Tensors: []Tensor{
		{Name: "a", Dims: []uint64{64, 32}, Type: F16},
		{Name: "b", Dims: []uint64{3, 3, 4, 32}, Type: F32},
		{Name: "c", Dims: []uint64{64, 32}, Type: Q4_0},
		{Name: "d", Dims: []uint64{5}, Type: F32},
	},
}

// A layout is a whole GGUF file: gguf-parser-go reads its metadata and tensors, every tensor
// lies inside the file, and the data is zeros.
func TestLayoutParsedBackByGGUFParser(t *testing.T) {
	p := filepath.Join(t.TempDir(), "layout.gguf")
	if err := WriteLayoutFile(p, testLayout); err != nil {
		t.Fatal(err)
	}
	gf, err := parser.ParseGGUFFile(p)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	md := gf.Header.MetadataKV
	for k, want := range map[string]string{"general.architecture": "test-arch", "general.name": "layout test"} {
		if kv, ok := md.Get(k); !ok || kv.ValueString() != want {
			t.Errorf("%s: %v, want %q", k, kv, want)
		}
	}
	if kv, ok := md.Get("general.alignment"); !ok || kv.ValueUint32() != Alignment {
		t.Errorf("general.alignment: %v", kv)
	}
	if len(gf.TensorInfos) != len(testLayout.Tensors) {
		t.Fatalf("%d tensors, want %d", len(gf.TensorInfos), len(testLayout.Tensors))
	}
	wantBytes := []uint64{64 * 32 * 2, 3 * 3 * 4 * 32 * 4, 64 * 32 / 32 * 18, 5 * 4}
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	for i, ti := range gf.TensorInfos {
		want := testLayout.Tensors[i]
		if ti.Name != want.Name || uint32(ti.Type) != uint32(want.Type) || ti.Bytes() != wantBytes[i] {
			t.Errorf("tensor %d: %s type %v %d bytes, want %s %v %d", i, ti.Name, ti.Type, ti.Bytes(), want.Name, want.Type, wantBytes[i])
		}
		start := int64(gf.TensorDataStartOffset) + int64(ti.Offset)
		end := start + int64(ti.Bytes())
		if start%Alignment != 0 || end > int64(len(data)) {
			t.Errorf("tensor %s at %d..%d of a %d-byte file", ti.Name, start, end, len(data))
			continue
		}
		if !bytes.Equal(data[start:end], make([]byte, end-start)) {
			t.Errorf("tensor %s: data is not zeros", ti.Name)
		}
	}
	if len(data)%Alignment != 0 {
		t.Errorf("file of %d bytes is not padded to %d", len(data), Alignment)
	}
	var b bytes.Buffer
	if n, err := WriteLayout(&b, testLayout); err != nil || n != int64(len(data)) || !bytes.Equal(b.Bytes(), data) {
		t.Errorf("WriteLayout: %d bytes, %v; the file has %d (same bytes: %v)", n, err, len(data), bytes.Equal(b.Bytes(), data))
	}
}

func TestLayoutValidate(t *testing.T) {
	with := func(f func(l *Layout)) Layout {
		l := testLayout
		l.Tensors = append([]Tensor(nil), testLayout.Tensors...)
		f(&l)
		return l
	}
	for name, l := range map[string]Layout{
		"no architecture": with(func(l *Layout) { l.Architecture = "" }),
		"no tensors":      with(func(l *Layout) { l.Tensors = nil }),
		"unnamed tensor":  with(func(l *Layout) { l.Tensors[0].Name = "" }),
		"no dims":         with(func(l *Layout) { l.Tensors[0].Dims = nil }),
		"zero dim":        with(func(l *Layout) { l.Tensors[0].Dims = []uint64{4, 0} }),
		"unknown type":    with(func(l *Layout) { l.Tensors[0].Type = 99 }),
		"partial block":   with(func(l *Layout) { l.Tensors[2].Dims = []uint64{33} }),
		"too large":       with(func(l *Layout) { l.Tensors[0].Dims = []uint64{1 << 20, 1 << 20} }),
	} {
		if err := l.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: %v, want ErrInvalidConfig", name, err)
		}
		p := filepath.Join(t.TempDir(), "x.gguf")
		if err := WriteLayoutFile(p, l); err == nil {
			t.Errorf("%s: written", name)
		}
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: a refused layout left a file: %v", name, err)
		}
	}
}

// A Config's weights stay F32 or F16: Q4_0 is for layouts, whose data is zeros.
func TestConfigRefusesQ4_0(t *testing.T) {
	if err := (Config{Type: Q4_0}).Validate(); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Q4_0 config: %v", err)
	}
}

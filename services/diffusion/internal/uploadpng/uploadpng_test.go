package uploadpng

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"testing"
)

func TestRGBWritesOpaqueRGBOfEveryInput(t *testing.T) {
	gray := image.NewGray(image.Rect(0, 0, 8, 4))
	gray.SetGray(1, 1, color.Gray{200})
	var g, j bytes.Buffer
	if err := png.Encode(&g, gray); err != nil {
		t.Fatal(err)
	}
	if err := jpeg.Encode(&j, gray, nil); err != nil {
		t.Fatal(err)
	}
	for name, in := range map[string][]byte{"gray png": g.Bytes(), "jpeg": j.Bytes()} {
		out, err := RGB(in)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// IHDR: colour type (byte 25) 2 = RGB, bit depth (byte 24) 8.
		if out[24] != 8 || out[25] != 2 {
			t.Errorf("%s: bit depth %d colour type %d", name, out[24], out[25])
		}
		m, err := png.Decode(bytes.NewReader(out))
		if err != nil || m.Bounds().Dx() != 8 || m.Bounds().Dy() != 4 {
			t.Fatalf("%s: %v %v", name, m.Bounds(), err)
		}
	}
	out, _ := RGB(g.Bytes())
	m, _ := png.Decode(bytes.NewReader(out))
	if r, _, _, _ := m.At(1, 1).RGBA(); r>>8 != 200 {
		t.Errorf("pixel %d, want 200", r>>8)
	}
	if _, err := RGB([]byte("nope")); err == nil {
		t.Error("garbage accepted")
	}
}

package imagereq

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math"
	"strings"
	"testing"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
)

// sameParams compares resolved parameters, the edit by value.
func sameParams(a, b Params) bool {
	ea, eb := a.Edit, b.Edit
	a.Edit, b.Edit = nil, nil
	if a != b || (ea == nil) != (eb == nil) {
		return false
	}
	return ea == nil || (bytes.Equal(ea.Image, eb.Image) && bytes.Equal(ea.Mask, eb.Mask) &&
		ea.Width == eb.Width && ea.Height == eb.Height && ea.Strength == eb.Strength)
}

func encodeTest(t *testing.T, w, h int, format string) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), 128, 255})
		}
	}
	var b bytes.Buffer
	var err error
	switch format {
	case "png":
		err = png.Encode(&b, img)
	case "jpeg":
		err = jpeg.Encode(&b, img, nil)
	case "gif":
		err = gif.Encode(&b, img, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestEditTakesTheImageSize(t *testing.T) {
	for _, format := range []string{"png", "jpeg"} {
		img := encodeTest(t, 128, 64, format)
		p, err := Resolve(Request{Prompt: "x", InitImage: img, Mask: encodeTest(t, 128, 64, "png")}, nil)
		if err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		if p.Width != 128 || p.Height != 64 || p.Edit == nil || p.Edit.Strength != DefaultStrength || p.Edit.Mask == nil {
			t.Fatalf("%s: %+v %v", format, p, p.Edit)
		}
	}
	// Explicit sizes equal to the image's are fine; strength 0 and 1 are the bounds.
	for _, s := range []float64{0, 1} {
		if _, err := Resolve(Request{Prompt: "x", Width: ptr(64), Height: ptr(64), InitImage: encodeTest(t, 64, 64, "png"), Strength: ptr(s)}, nil); err != nil {
			t.Fatalf("strength %v: %v", s, err)
		}
	}
}

func TestBatchAndPreviewResolve(t *testing.T) {
	p, err := Resolve(Request{Prompt: "x", N: ptr(3), Seed: ptr(int64(10)), Preview: &PreviewRequest{Method: "proj"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.N != 3 || p.Preview != (Preview{Method: "proj", Interval: 1}) {
		t.Fatalf("%+v", p)
	}
	if s := p.Seeds(); len(s) != 3 || s[0] != 10 || s[1] != 11 || s[2] != 12 {
		t.Fatalf("seeds %v", s)
	}
	// Through the protos and back.
	again, err := Resolve(FromProto(ToProto(p)), nil)
	if err != nil || !sameParams(again, p) {
		t.Fatalf("round trip %+v, %v", again, err)
	}
	// A plain request writes neither n nor preview.
	if m := ToProto(Params{N: 1}); m.N != nil || m.Preview != nil || m.Strength != nil {
		t.Fatalf("plain request carries %v", m)
	}
}

func TestEditBatchPreviewRejects(t *testing.T) {
	png64, png128 := encodeTest(t, 64, 64, "png"), encodeTest(t, 128, 64, "png")
	png100 := encodeTest(t, 100, 64, "png")
	cases := map[string]Request{
		"n must be within 1-8, got 0":                 {N: ptr(0)},
		"n must be within 1-8, got 9":                 {N: ptr(MaxBatch + 1)},
		"seed must be at most 4294967293":             {N: ptr(3), Seed: ptr(int64(MaxSeed))},
		"preview method \"sixel\" is not supported":   {Preview: &PreviewRequest{Method: "sixel"}},
		"preview interval must be within 1-150":       {Preview: &PreviewRequest{Method: "tae", Interval: ptr(0)}},
		"preview interval and noisy need a preview":   {Preview: &PreviewRequest{Interval: ptr(2)}},
		"mask needs an init image":                    {Mask: png64},
		"strength needs an init image":                {Strength: ptr(0.5)},
		"strength must be within 0-1, got 1.5":        {InitImage: png64, Strength: ptr(1.5)},
		"strength must be within 0-1, got NaN":        {InitImage: png64, Strength: ptr(math.NaN())},
		"image is not a PNG or JPEG image":            {InitImage: []byte("hello, not an image")},
		"image is gif; only PNG and JPEG":             {InitImage: encodeTest(t, 64, 64, "gif")},
		"image does not decode as png":                {InitImage: png64[:len(png64)-20]},
		"the image's width must be a multiple of 64":  {InitImage: png100},
		"the mask is 64x64 but the image is 128x64":   {InitImage: png128, Mask: png64},
		"mask is not a PNG or JPEG image":             {InitImage: png64, Mask: []byte{1, 2, 3}},
		"the image is 64x64 but the request asks for": {InitImage: png64, Width: ptr(128)},
		"image is 3000x64":                            {InitImage: bigHeader(t, 3000, 64)},
		"image is 16777217 bytes":                     {InitImage: make([]byte, MaxUploadBytes+1)},
	}
	for want, r := range cases {
		r.Prompt = "x"
		_, err := Resolve(r, nil)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v", want, err)
		}
	}
	// An unknown enum value of the proto is refused by name, not taken for "none".
	err := Validate(&diffusionv1.ImageParams{Prompt: "x", Preview: &diffusionv1.PreviewOptions{Method: 99}})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "99") {
		t.Errorf("unknown preview method: %v", err)
	}
}

// bigHeader is a PNG whose header claims w x h: refused from the header, never decoded.
func bigHeader(t *testing.T, w, h int) []byte {
	t.Helper()
	b := encodeTest(t, 64, 64, "png")
	// IHDR's width and height are the 4+4 bytes after the 8-byte signature, length and type.
	c := bytes.Clone(b)
	c[16], c[17], c[18], c[19] = byte(w>>24), byte(w>>16), byte(w>>8), byte(w)
	c[20], c[21], c[22], c[23] = byte(h>>24), byte(h>>16), byte(h>>8), byte(h)
	binary.BigEndian.PutUint32(c[29:33], crc32.ChecksumIEEE(c[12:29]))
	return c
}

func TestWithoutUploads(t *testing.T) {
	s := float32(0.5)
	m := &diffusionv1.ImageParams{Prompt: "x", InitImage: []byte{1}, Mask: []byte{2}, Strength: &s}
	c := WithoutUploads(m)
	if c.InitImage != nil || c.Mask != nil || c.GetStrength() != 0.5 || m.InitImage == nil {
		t.Fatalf("copy %v, original %v", c, m)
	}
	if plain := (&diffusionv1.ImageParams{Prompt: "x"}); WithoutUploads(plain) != plain {
		t.Fatal("a request without uploads is copied")
	}
}

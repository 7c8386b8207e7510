package imagereq

import (
	"bytes"
	"fmt"
	"image"

	// The formats an edit may upload.
	_ "image/jpeg"
	_ "image/png"
)

// Edit limits and defaults.
const (
	// MaxUploadBytes bounds each uploaded image (init image, mask).
	MaxUploadBytes = 16 << 20
	// DefaultStrength is sd.cpp's own default (--strength 0.75).
	DefaultStrength = 0.75
)

// Edit is a validated image edit (img2img, inpainting when Mask is set).
type Edit struct {
	// Image is the init image as uploaded (PNG or JPEG), Width x Height pixels.
	Image         []byte
	Width, Height int
	// Mask is the inpainting mask as uploaded, the image's size; nil when none.
	Mask []byte
	// Strength is how much of the image is replaced, 0..1.
	Strength float64
}

// resolveEdit checks the init image, mask and strength of r; nil when r is no edit.
func resolveEdit(r Request) (*Edit, error) {
	if len(r.InitImage) == 0 {
		if len(r.Mask) > 0 {
			return nil, invalid("mask needs an init image (the image to edit)")
		}
		if r.Strength != nil {
			return nil, invalid("strength needs an init image (the image to edit)")
		}
		return nil, nil
	}
	e := &Edit{Image: r.InitImage, Strength: DefaultStrength}
	if r.Strength != nil {
		e.Strength = *r.Strength
	}
	if !(e.Strength >= 0 && e.Strength <= 1) { // NaN fails too
		return nil, invalid("strength must be within 0-1, got %v", e.Strength)
	}
	img, err := decodeUpload("image", r.InitImage)
	if err != nil {
		return nil, err
	}
	b := img.Bounds()
	e.Width, e.Height = b.Dx(), b.Dy()
	if err := checkSize("the image's width", e.Width); err != nil {
		return nil, err
	}
	if err := checkSize("the image's height", e.Height); err != nil {
		return nil, err
	}
	if len(r.Mask) > 0 {
		m, err := decodeUpload("mask", r.Mask)
		if err != nil {
			return nil, err
		}
		if mb := m.Bounds(); mb.Dx() != e.Width || mb.Dy() != e.Height {
			return nil, invalid("the mask is %dx%d but the image is %dx%d (they must be the same size)", mb.Dx(), mb.Dy(), e.Width, e.Height)
		}
		e.Mask = r.Mask
	}
	return e, nil
}

// decodeUpload decodes an uploaded PNG or JPEG, after checking its byte size and, from its
// header, its pixel size, so that a small file claiming a huge image is refused undecoded.
func decodeUpload(name string, data []byte) (image.Image, error) {
	if len(data) > MaxUploadBytes {
		return nil, invalid("%s is %d bytes (at most %d)", name, len(data), MaxUploadBytes)
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, invalid("%s is not a PNG or JPEG image: %v", name, err)
	}
	if format != "png" && format != "jpeg" {
		return nil, invalid("%s is %s; only PNG and JPEG are accepted", name, format)
	}
	if cfg.Width > MaxSize || cfg.Height > MaxSize || cfg.Width < 1 || cfg.Height < 1 {
		return nil, invalid("%s is %dx%d; each side must be within %d-%d and a multiple of %d", name, cfg.Width, cfg.Height, MinSize, MaxSize, SizeMultiple)
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, invalid("%s does not decode as %s: %v", name, format, err)
	}
	return img, nil
}

// String describes the edit without its bytes (for logs).
func (e *Edit) String() string {
	if e == nil {
		return "none"
	}
	return fmt.Sprintf("%dx%d image (%d bytes), mask %t, strength %v", e.Width, e.Height, len(e.Image), e.Mask != nil, e.Strength)
}

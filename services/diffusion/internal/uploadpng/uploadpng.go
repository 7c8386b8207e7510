// Package uploadpng re-encodes an edit's uploaded images (PNG or JPEG, any colour model, already
// validated by pkg/imagereq) as the opaque 8-bit RGB PNG that both stable-diffusion.cpp front
// ends read: sd-server's img_gen refuses some inputs sd-cli takes (a grayscale PNG is a 400
// "invalid generation parameters"), so the engine is always given the one form both accept.
package uploadpng

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"

	// The formats an upload may be in.
	_ "image/jpeg"
)

// RGB decodes data and re-encodes it as an opaque RGB PNG (transparent pixels over black).
func RGB(data []byte) ([]byte, error) {
	src, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("decode upload: %w", err)
	}
	b := src.Bounds()
	dst := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(dst, dst.Bounds(), image.NewUniform(color.Black), image.Point{}, draw.Src)
	draw.Draw(dst, dst.Bounds(), src, b.Min, draw.Over)
	var out bytes.Buffer
	// An opaque *image.RGBA is written as 8-bit RGB (colour type 2).
	if err := (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(&out, dst); err != nil {
		return nil, fmt.Errorf("encode upload: %w", err)
	}
	return out.Bytes(), nil
}

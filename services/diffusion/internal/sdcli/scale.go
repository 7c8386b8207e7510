package sdcli

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
)

// MaxPreviewSide bounds a preview's long side in pixels: previews are for watching the image
// emerge, and they cross the network once per step.
const MaxPreviewSide = 256

// encoder writes previews fast: they are shown once and replaced at the next step.
var encoder = png.Encoder{CompressionLevel: png.BestSpeed}

// thumbnail decodes a PNG and returns it re-encoded with its long side at most maxSide pixels
// (averaging the source pixels each target pixel covers), with its size. A PNG that is small
// enough is returned as it is.
func thumbnail(data []byte, maxSide int) ([]byte, int, int, error) {
	src, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, 0, 0, fmt.Errorf("decode preview: %w", err)
	}
	b := src.Bounds()
	w, h := b.Dx(), b.Dy()
	if w <= maxSide && h <= maxSide {
		return data, w, h, nil
	}
	tw, th := maxSide, max(1, h*maxSide/w)
	if h > w {
		tw, th = max(1, w*maxSide/h), maxSide
	}
	dst := image.NewRGBA(image.Rect(0, 0, tw, th)) // premultiplied, as the averages
	for y := range th {
		y0, y1 := b.Min.Y+y*h/th, b.Min.Y+max((y+1)*h/th, y*h/th+1)
		for x := range tw {
			x0, x1 := b.Min.X+x*w/tw, b.Min.X+max((x+1)*w/tw, x*w/tw+1)
			var r, g, bl, a, n uint64
			for sy := y0; sy < y1; sy++ {
				for sx := x0; sx < x1; sx++ {
					cr, cg, cb, ca := src.At(sx, sy).RGBA()
					r, g, bl, a, n = r+uint64(cr), g+uint64(cg), bl+uint64(cb), a+uint64(ca), n+1
				}
			}
			i := dst.PixOffset(x, y)
			dst.Pix[i], dst.Pix[i+1], dst.Pix[i+2], dst.Pix[i+3] = uint8(r/n>>8), uint8(g/n>>8), uint8(bl/n>>8), uint8(a/n>>8)
		}
	}
	var out bytes.Buffer
	if err := encoder.Encode(&out, dst); err != nil {
		return nil, 0, 0, fmt.Errorf("encode preview: %w", err)
	}
	return out.Bytes(), tw, th, nil
}

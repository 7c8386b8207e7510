// Package pngcheck verifies an engine's image before it is returned: it must decode as a PNG
// and have the requested size.
package pngcheck

import (
	"bytes"
	"fmt"
	"image/png"

	"github.com/genailab/genailab/services/diffusion/internal/enginerr"
)

// Check decodes data completely (so a truncated or corrupt file fails) and compares its size
// with width x height. Errors wrap enginerr.ErrBadImage.
func Check(data []byte, width, height int) error {
	if len(data) == 0 {
		return fmt.Errorf("%w: empty file", enginerr.ErrBadImage)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("%w: decode png (%d bytes): %v", enginerr.ErrBadImage, len(data), err)
	}
	b := img.Bounds()
	if b.Dx() != width || b.Dy() != height {
		return fmt.Errorf("%w: image is %dx%d, requested %dx%d", enginerr.ErrBadImage, b.Dx(), b.Dy(), width, height)
	}
	return nil
}

package engine

import (
	"fmt"

	"github.com/genailab/genailab/pkg/imagereq"
	"github.com/genailab/genailab/services/diffusion/internal/uploadpng"
)

// rgbEdit is e with its image and mask re-encoded as RGB PNGs (uploadpng.RGB).
func rgbEdit(e imagereq.Edit) (*imagereq.Edit, error) {
	img, err := uploadpng.RGB(e.Image)
	if err != nil {
		return nil, fmt.Errorf("%w: init image: %v", imagereq.ErrInvalid, err)
	}
	e.Image = img
	if e.Mask != nil {
		if e.Mask, err = uploadpng.RGB(e.Mask); err != nil {
			return nil, fmt.Errorf("%w: mask: %v", imagereq.ErrInvalid, err)
		}
	}
	return &e, nil
}

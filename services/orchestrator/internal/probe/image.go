package probe

import (
	"errors"
	"fmt"
	"slices"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	"github.com/genailab/genailab/pkg/imagereq"
)

// ErrUnsupported: the host's diffusion engine, in its current mode, cannot run what the
// request asks for (previews or edits in server mode); the message says what and why.
// It is found before anything is offloaded.
var ErrUnsupported = errors.New("the diffusion engine cannot run this request")

// Image is what the decision needs of an image request: its size, and what adds memory or
// needs an engine feature (a batch, an edit, previews).
type Image struct {
	Width, Height int
	// N is the batch size (0 or 1: one image).
	N int
	// Edit and Mask: an img2img edit, with an inpainting mask.
	Edit, Mask bool
	// Preview is the preview method ("proj", "tae", "vae"; "" for none).
	Preview string
}

// ImageOf reads an (already validated) request; unset sides are the default 512.
func ImageOf(p *diffusionv1.ImageParams) Image {
	img := Image{Width: int(p.GetWidth()), Height: int(p.GetHeight()), N: int(p.GetN()),
		Edit: len(p.GetInitImage()) > 0, Mask: len(p.GetMask()) > 0}
	if img.Width <= 0 {
		img.Width = imagereq.DefaultSize
	}
	if img.Height <= 0 {
		img.Height = imagereq.DefaultSize
	}
	if m := p.GetPreview().GetMethod(); m != diffusionv1.PreviewMethod_PREVIEW_METHOD_UNSPECIFIED {
		img = withPreview(img, m)
	}
	return img
}

func withPreview(img Image, m diffusionv1.PreviewMethod) Image {
	switch m {
	case diffusionv1.PreviewMethod_PREVIEW_METHOD_PROJ:
		img.Preview = "proj"
	case diffusionv1.PreviewMethod_PREVIEW_METHOD_TAE:
		img.Preview = "tae"
	default:
		img.Preview = "vae"
	}
	return img
}

// Supports checks img against the engine's capabilities (GetInfo). An engine that reports
// none (stopped, or an older service) is not second-guessed: it refuses itself.
func Supports(info *diffusionv1.DiffusionInfo, img Image) error {
	c := info.GetCapabilities()
	if c == nil {
		return nil
	}
	why := ""
	if c.GetLimitations() != "" {
		why = ": " + c.GetLimitations()
	}
	switch {
	case img.Preview != "" && !slices.Contains(c.GetPreviewMethods(), imagereq.PreviewMethodProto(img.Preview)):
		return fmt.Errorf("%w: %s previews are not available%s", ErrUnsupported, img.Preview, why)
	case img.Edit && !c.GetEdits():
		return fmt.Errorf("%w: image edits are not available%s", ErrUnsupported, why)
	case img.Mask && !c.GetMasks():
		return fmt.Errorf("%w: inpainting masks are not available%s", ErrUnsupported, why)
	case img.N > 1 && int32(img.N) > c.GetMaxBatch():
		return fmt.Errorf("%w: batches of %d are not available (at most %d)%s", ErrUnsupported, img.N, c.GetMaxBatch(), why)
	}
	return nil
}

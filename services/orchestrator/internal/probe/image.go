package probe

import (
	"slices"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	"github.com/genailab/genailab/pkg/imagereq"
	"github.com/genailab/genailab/services/orchestrator/internal/estimate"
	"github.com/genailab/genailab/services/orchestrator/internal/place"
)

// ErrUnsupported: the host's diffusion engine, in its current mode, cannot run what the
// request asks for (previews in server mode); the message names the mode and what is
// missing. It is placement's error (place.ErrUnsupported): the submit edge and placement
// find it from the gathered capabilities, the probe again before its offload decision.
var ErrUnsupported = place.ErrUnsupported

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

// Needs are the engine features img asks for.
func (img Image) Needs() place.Needs {
	return place.Needs{Preview: img.Preview, Edit: img.Edit, Mask: img.Mask, N: img.N}
}

// NeedsOf reads the engine features a request not validated yet asks for, for the submit
// edge's capability check (which runs before the job, and so before its validation): only
// values within what imagereq accepts count, so that a value out of range (n 0 or 9, an
// unknown preview method, a mask without an image) is the validation's InvalidArgument,
// not a capability's refusal.
func NeedsOf(p *diffusionv1.ImageParams) place.Needs {
	r := imagereq.FromProto(p)
	var n place.Needs
	if pv := r.Preview; pv != nil && slices.Contains(imagereq.PreviewMethods, pv.Method) {
		n.Preview = pv.Method
	}
	n.Edit = len(r.InitImage) > 0
	n.Mask = n.Edit && len(r.Mask) > 0
	if r.N != nil && *r.N >= 1 && *r.N <= imagereq.MaxBatch {
		n.N = *r.N
	}
	return n
}

// Capabilities are the engine's capabilities as placement reads them (GetInfo's, with its
// mode); nil when it reports none (stopped, or an older service).
func Capabilities(info *diffusionv1.DiffusionInfo) *place.Capabilities {
	c := info.GetCapabilities()
	if c == nil {
		return nil
	}
	mode := "CLI"
	if DiffusionMode(info) == estimate.ModeServer {
		mode = "server"
	}
	pc := &place.Capabilities{Mode: mode, Edits: c.GetEdits(), Masks: c.GetMasks(), MaxBatch: int(c.GetMaxBatch()), Limitations: c.GetLimitations()}
	for _, m := range c.GetPreviewMethods() {
		if m != diffusionv1.PreviewMethod_PREVIEW_METHOD_UNSPECIFIED {
			pc.PreviewMethods = append(pc.PreviewMethods, withPreview(Image{}, m).Preview)
		}
	}
	return pc
}

// Supports checks img against the engine's capabilities (GetInfo). An engine that reports
// none (stopped, or an older service) is not second-guessed: it refuses itself.
func Supports(info *diffusionv1.DiffusionInfo, img Image) error {
	return Capabilities(info).Check(img.Needs())
}

package engine

import (
	"fmt"
	"slices"

	"github.com/genailab/genailab/pkg/imagereq"
	"github.com/genailab/genailab/services/diffusion/internal/enginerr"
)

// Capabilities are what the running engine can do beyond text-to-image, in its mode.
type Capabilities struct {
	// PreviewMethods are the preview methods it can write (imagereq.PreviewMethods' names);
	// empty when it writes none.
	PreviewMethods []string
	// Edits: img2img with an init image; Masks: inpainting.
	Edits, Masks bool
	// MaxBatch is the largest n.
	MaxBatch int
	// Limitations says, for the user, what is missing and why (empty when nothing is).
	Limitations string
}

// cliCapabilities: sd-cli of master-827 writes previews (--preview proj|tae|vae; tae uses
// the model's TAE when it has one), edits (-i, --mask, --strength) and batches (-b).
var cliCapabilities = Capabilities{
	PreviewMethods: imagereq.PreviewMethods,
	Edits:          true, Masks: true,
	MaxBatch: imagereq.MaxBatch,
}

// demoCapabilities: the demo stand-in makes batches of synthetic patterns, but writes no
// previews and ignores an init image.
var demoCapabilities = Capabilities{
	MaxBatch:    imagereq.MaxBatch,
	Limitations: "the demo engine (a stand-in, not stable-diffusion.cpp) writes no previews and cannot edit images; configure sd-cli for them",
}

// check refuses, with enginerr.ErrUnsupported naming mode, what p asks for that c lacks.
func (c Capabilities) check(mode Mode, p imagereq.Params) error {
	refuse := func(what string) error {
		why := ""
		if c.Limitations != "" {
			why = " (" + c.Limitations + ")"
		}
		return fmt.Errorf("%w: %s are not supported in %s mode%s", enginerr.ErrUnsupported, what, mode, why)
	}
	switch {
	case p.Preview.Enabled() && !slices.Contains(c.PreviewMethods, p.Preview.Method):
		return refuse(p.Preview.Method + " previews")
	case p.Edit != nil && !c.Edits:
		return refuse("image edits")
	case p.Edit != nil && p.Edit.Mask != nil && !c.Masks:
		return refuse("inpainting masks")
	case p.N > max(c.MaxBatch, 1):
		return refuse(fmt.Sprintf("batches of %d", p.N))
	}
	return nil
}

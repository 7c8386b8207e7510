package place

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrUnsupported: the diffusion engine, in its mode, cannot run what the request asks for
// (previews in server mode, edits on the demo engine, a batch over its limit); the message
// names the mode and what is missing. It is found before anything is queued or offloaded
// when the hosts' capabilities are known (Supported), else by the host's probe before its
// offload decision.
var ErrUnsupported = errors.New("the diffusion engine cannot run this request")

// Capabilities are what a host's diffusion engine can do in its mode, as its GetInfo
// reported them.
type Capabilities struct {
	// Mode names the engine's mode for the user ("server", "CLI").
	Mode string
	// PreviewMethods are the preview methods it writes ("proj", "tae", "vae").
	PreviewMethods []string
	// Edits (img2img) and Masks (inpainting).
	Edits, Masks bool
	// MaxBatch is the largest n.
	MaxBatch int
	// Limitations is the engine's own sentence about what is missing and why.
	Limitations string
}

// Needs are the engine features a request asks for.
type Needs struct {
	// Preview is the preview method ("" for none).
	Preview string
	// Edit (an init image) and Mask (inpainting).
	Edit, Mask bool
	// N is the batch size (0 or 1: one image).
	N int
}

// Plain tells that n asks for nothing beyond one text-to-image image, which every engine runs.
func (n Needs) Plain() bool { return n.Preview == "" && !n.Edit && !n.Mask && n.N <= 1 }

// Lacks returns what of n the engine cannot do ("" when it can do all of it).
func (c *Capabilities) Lacks(n Needs) string {
	switch {
	case n.Preview != "" && !slices.Contains(c.PreviewMethods, n.Preview):
		return n.Preview + " previews are not available"
	case n.Edit && !c.Edits:
		return "image edits are not available"
	case n.Mask && !c.Masks:
		return "inpainting masks are not available"
	case n.N > max(c.MaxBatch, 1):
		return fmt.Sprintf("batches of %d are not available (at most %d)", n.N, max(c.MaxBatch, 1))
	}
	return ""
}

// Refusal is the sentence for what the engine lacks: what, the mode, and the engine's why.
func (c *Capabilities) Refusal(lack string) string {
	s := lack + " in " + c.Mode + " mode"
	if c.Limitations != "" {
		s += " (" + c.Limitations + ")"
	}
	return s
}

// Check is ErrUnsupported with the refusal when the engine cannot do n; nil when it can
// or when its capabilities are not known (c nil: the engine refuses itself).
func (c *Capabilities) Check(n Needs) error {
	if c == nil {
		return nil
	}
	if lack := c.Lacks(n); lack != "" {
		return fmt.Errorf("%w: %s", ErrUnsupported, c.Refusal(lack))
	}
	return nil
}

// unable is the refusal of the candidate for req ("" when its engine can run it or its
// capabilities are not known).
func unable(c *Candidate, req Request) string {
	if c.Caps == nil {
		return ""
	}
	if lack := c.Caps.Lacks(req.Needs); lack != "" {
		return c.Caps.Refusal(lack)
	}
	return ""
}

// Supported is the check at the submit edge, before a job exists: ErrUnsupported, naming
// each host's mode and what it lacks, when every host that could take the request (the
// pinned one, or all) has known capabilities and none can run it. A host whose
// capabilities are not known yet (never reached, engine stopped) lets the request through:
// its probe refuses it at run time, before anything is offloaded, if it must.
func Supported(cands []Candidate, req Request) error {
	var refusals []string
	for i := range cands {
		c := &cands[i]
		if req.Pin != "" && c.Name != req.Pin {
			continue
		}
		why := unable(c, req)
		if why == "" {
			return nil
		}
		refusals = append(refusals, c.Name+": "+why)
	}
	if len(refusals) == 0 {
		return nil // no such host: placement says so
	}
	return unsupported(refusals)
}

// unsupported is ErrUnsupported for hosts that all refused: one refusal as it is, several
// listed (at most maxListed).
func unsupported(refusals []string) error {
	if len(refusals) == 1 {
		return fmt.Errorf("%w on host %s", ErrUnsupported, refusals[0])
	}
	return fmt.Errorf("%w on any of the %d host(s): %s", ErrUnsupported, len(refusals), listed(refusals))
}

// maxListed bounds the hosts a sentence names one by one.
const maxListed = 3

func listed(s []string) string {
	if len(s) <= maxListed {
		return strings.Join(s, "; ")
	}
	return strings.Join(s[:maxListed], "; ") + fmt.Sprintf("; and %d more", len(s)-maxListed)
}

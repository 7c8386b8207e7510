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

// lack is the first feature of a request that an engine lacks.
type lack int

const (
	lacksNothing lack = iota
	lacksPreview
	lacksEdit
	lacksMask
	lacksBatch
)

// lacks is Lacks without the sentence (no allocation: placement asks it of every host).
func (c *Capabilities) lacks(n Needs) lack {
	switch {
	case c == nil:
		return lacksNothing // not known: the engine refuses itself
	case n.Preview != "" && !slices.Contains(c.PreviewMethods, n.Preview):
		return lacksPreview
	case n.Edit && !c.Edits:
		return lacksEdit
	case n.Mask && !c.Masks:
		return lacksMask
	case n.N > max(c.MaxBatch, 1):
		return lacksBatch
	}
	return lacksNothing
}

// Lacks returns what of n the engine cannot do ("" when it can do all of it).
func (c *Capabilities) Lacks(n Needs) string {
	switch c.lacks(n) {
	case lacksPreview:
		return n.Preview + " previews are not available"
	case lacksEdit:
		return "image edits are not available"
	case lacksMask:
		return "inpainting masks are not available"
	case lacksBatch:
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

// unable tells that the candidate's engine cannot run req (false when its capabilities are
// not known).
func unable(c *Candidate, req Request) bool { return c.Caps.lacks(req.Needs) != lacksNothing }

// exclusions are the hosts whose engine cannot run a request: how many, and the first
// maxListed (by index), which the sentences name.
type exclusions struct {
	n     int
	first [maxListed]int
}

func (x *exclusions) add(i int) {
	if x.n < maxListed {
		x.first[x.n] = i
	}
	x.n++
}

// text names the first excluded hosts with their mode and what they lack, and counts the rest.
func (x *exclusions) text(cands []Candidate, req Request) string {
	var b strings.Builder
	for k, i := range x.first[:min(x.n, maxListed)] {
		if k > 0 {
			b.WriteString("; ")
		}
		c := &cands[i]
		b.WriteString(c.Name + ": " + c.Caps.Refusal(c.Caps.Lacks(req.Needs)))
	}
	if x.n > maxListed {
		fmt.Fprintf(&b, "; and %d more", x.n-maxListed)
	}
	return b.String()
}

// err is ErrUnsupported for the excluded hosts: all of those that could take the request.
func (x *exclusions) err(cands []Candidate, req Request) error {
	if x.n == 1 {
		return fmt.Errorf("%w on host %s", ErrUnsupported, x.text(cands, req))
	}
	return fmt.Errorf("%w on any of the %d host(s): %s", ErrUnsupported, x.n, x.text(cands, req))
}

// Supported is the check at the submit edge, before a job exists: ErrUnsupported, naming
// each host's mode and what it lacks, when every host that could take the request (the
// pinned one, or all) has known capabilities and none can run it. A host whose
// capabilities are not known yet (never reached, engine stopped) lets the request through:
// its probe refuses it at run time, before anything is offloaded, if it must.
func Supported(cands []Candidate, req Request) error {
	var x exclusions
	for i := range cands {
		c := &cands[i]
		if req.Pin != "" && c.Name != req.Pin {
			continue
		}
		if !unable(c, req) {
			return nil
		}
		x.add(i)
	}
	if x.n == 0 {
		return nil // no such host: placement says so
	}
	return x.err(cands, req)
}

// maxListed bounds the hosts a sentence names one by one.
const maxListed = 3

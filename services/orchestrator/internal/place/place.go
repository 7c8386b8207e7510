// Package place chooses the host an image runs on. It is a pure function of what the
// orchestrator already holds about each host (cached telemetry, no calls), so that a
// decision over a hundred hosts takes microseconds.
//
// Among the hosts that are ready, not draining, not busy, have the diffusion model and
// whose engine can run what the request asks for in its mode (previews, an edit, a mask,
// a batch of n: Capabilities; a host whose capabilities are not known yet is not excluded)
// — or the one pinned host — the order is:
//
//  1. the image fits without any offload;
//  2. the diffusion engine (an sd-server) already has the model loaded;
//  3. the least disruptive offload: an idle LLM before a busy one, a smaller one before a larger one;
//  4. the policy: binpack (the tightest fit, keeping large hosts free for large images)
//     or spread (the most memory left, fewest queued images);
//  5. the name, so that equal hosts are chosen the same way every time.
package place

import (
	"errors"
	"fmt"
	"strings"

	"github.com/genailab/genailab/services/orchestrator/internal/decide"
)

// Policy breaks ties between equally good hosts.
type Policy int

// Policies.
const (
	// Binpack prefers the host with the least memory left after the image.
	Binpack Policy = iota
	// Spread prefers the host with the most memory left and the fewest queued images.
	Spread
)

// ParsePolicy reads "binpack" or "spread".
func ParsePolicy(s string) (Policy, error) {
	switch strings.ToLower(s) {
	case "", "binpack":
		return Binpack, nil
	case "spread":
		return Spread, nil
	}
	return 0, fmt.Errorf("unknown placement policy %q (binpack or spread)", s)
}

func (p Policy) String() string {
	if p == Spread {
		return "spread"
	}
	return "binpack"
}

// Candidate is one host as placement sees it.
type Candidate struct {
	Name string
	// Usable is false when the host is unreachable, draining or busy; Why says which.
	Usable bool
	// Busy is true when the host is usable but for a job (or LLM reload) running on it:
	// a request may wait for it.
	Busy bool
	Why  string
	// HasModel tells whether the host has the diffusion model installed or configured;
	// NoModelWhy says why not, for the error when no host has it.
	HasModel   bool
	NoModelWhy string
	// ModelLoaded tells whether its diffusion engine (an sd-server) holds the model now.
	ModelLoaded bool
	// LoadsPerImage tells that its diffusion engine runs one sd-cli per image, which loads
	// the model for that image (no process holds a model between images).
	LoadsPerImage bool
	// NeedBytes is what the image needs on this host (estimate plus headroom).
	NeedBytes uint64
	// AvailableBytes and AfterOffloadBytes are the memory usable now and once its LLM is
	// stopped (after its budget).
	AvailableBytes, AfterOffloadBytes uint64
	// LLMRunning, LLMBusy (requests in flight) and LLMBytes describe its LLM.
	LLMRunning, LLMBusy bool
	LLMBytes            uint64
	// Queued is the number of images queued for or running on it.
	Queued int
	// Caps are what its diffusion engine can do in its mode; nil when not known (never
	// reached, engine stopped).
	Caps *Capabilities
}

// Request is what is being placed.
type Request struct {
	// Pin, when set, is the only acceptable host.
	Pin    string
	Policy Policy
	// Needs are the engine features the image asks for.
	Needs Needs
}

// Choice is the chosen host and why.
type Choice struct {
	Name         string
	NeedsOffload bool
	Explanation  string
	// Considered is how many hosts could take the image.
	Considered int
}

// Errors of Choose.
var (
	// ErrNoHost: no host can take the image now or later (unknown pin, no host with the
	// model, all unreachable or draining).
	ErrNoHost = errors.New("no host can take the image")
	// ErrAllBusy: hosts could take it, but all of them are busy; wait and try again.
	ErrAllBusy = errors.New("every host that can take the image is busy")
)

type rank struct {
	fit      int // 0 fits now, 1 fits after offload, 2 does not fit even then
	loaded   int
	llmBusy  int
	llmBytes uint64
	left     uint64 // memory left after the image (binpack: less is better)
	queued   int
}

func rankOf(c *Candidate) rank {
	r := rank{queued: c.Queued}
	switch {
	case c.NeedBytes <= c.AvailableBytes:
		r.left = c.AvailableBytes - c.NeedBytes
	case c.LLMRunning && c.NeedBytes <= c.AfterOffloadBytes:
		r.fit, r.left = 1, c.AfterOffloadBytes-c.NeedBytes
		if c.LLMBusy {
			r.llmBusy = 1
		}
		r.llmBytes = c.LLMBytes
	default:
		r.fit = 2
		if c.LLMBusy {
			r.llmBusy = 1
		}
		r.llmBytes = c.LLMBytes
	}
	if !c.ModelLoaded {
		r.loaded = 1
	}
	return r
}

func better(a, b rank, an, bn string, p Policy) bool {
	if a.fit != b.fit {
		return a.fit < b.fit
	}
	if a.loaded != b.loaded {
		return a.loaded < b.loaded
	}
	if a.fit > 0 {
		if a.llmBusy != b.llmBusy {
			return a.llmBusy < b.llmBusy
		}
		if a.llmBytes != b.llmBytes {
			return a.llmBytes < b.llmBytes
		}
	}
	if p == Spread {
		if a.queued != b.queued {
			return a.queued < b.queued
		}
		if a.left != b.left {
			return a.left > b.left
		}
	} else if a.left != b.left {
		return a.left < b.left
	}
	return an < bn
}

// Choose picks the host. It does not allocate except for the explanation.
func Choose(cands []Candidate, req Request) (Choice, error) {
	best, considered, busy, withModel := -1, 0, 0, 0
	var bestRank rank
	var excluded exclusions // hosts with the model whose engine cannot run the request
	for i := range cands {
		c := &cands[i]
		if req.Pin != "" && c.Name != req.Pin {
			continue
		}
		if !c.HasModel {
			continue
		}
		withModel++
		if unable(c, req) {
			excluded.add(i)
			continue
		}
		if !c.Usable {
			if c.Busy {
				busy++
			}
			continue
		}
		considered++
		r := rankOf(c)
		if best < 0 || better(r, bestRank, c.Name, cands[best].Name, req.Policy) {
			best, bestRank = i, r
		}
	}
	if best < 0 {
		if withModel > 0 && excluded.n == withModel {
			return Choice{}, excluded.err(cands, req)
		}
		err := noHost(cands, req, withModel, busy)
		if excluded.n > 0 {
			err = fmt.Errorf("%w; excluded for their engine's mode: %s", err, excluded.text(cands, req))
		}
		return Choice{}, err
	}
	c := &cands[best]
	ch := Choice{Name: c.Name, Considered: considered, NeedsOffload: bestRank.fit > 0}
	ch.Explanation = explain(c, bestRank, req, considered)
	if excluded.n > 0 {
		ch.Explanation += fmt.Sprintf(" Excluded %d host(s) whose engine cannot run it: %s.", excluded.n, excluded.text(cands, req))
	}
	return ch, nil
}

func noHost(cands []Candidate, req Request, withModel, busy int) error {
	if req.Pin != "" {
		for i := range cands {
			c := &cands[i]
			if c.Name != req.Pin {
				continue
			}
			switch {
			case !c.HasModel:
				return fmt.Errorf("%w: the pinned host %q does not have the diffusion model", ErrNoHost, req.Pin)
			case c.Busy:
				return fmt.Errorf("%w: the pinned host %q is running another image", ErrAllBusy, req.Pin)
			default:
				return fmt.Errorf("%w: the pinned host %q is %s", ErrNoHost, req.Pin, c.Why)
			}
		}
		return fmt.Errorf("%w: unknown host %q", ErrNoHost, req.Pin)
	}
	if busy > 0 {
		return fmt.Errorf("%w (%d host(s))", ErrAllBusy, busy)
	}
	if withModel == 0 {
		var why []string
		for i := range cands {
			if w := cands[i].NoModelWhy; w != "" && len(why) < 3 {
				why = append(why, cands[i].Name+": "+w)
			}
		}
		if len(why) > 0 {
			return fmt.Errorf("%w: none of the %d host(s) has the diffusion model (%s)", ErrNoHost, len(cands), strings.Join(why, "; "))
		}
		return fmt.Errorf("%w: none of the %d host(s) has the diffusion model", ErrNoHost, len(cands))
	}
	return fmt.Errorf("%w: the %d host(s) with the diffusion model are unreachable or draining", ErrNoHost, withModel)
}

func explain(c *Candidate, r rank, req Request, considered int) string {
	var b strings.Builder
	if req.Pin != "" {
		fmt.Fprintf(&b, "Placed on %s, the pinned host: ", c.Name)
	} else {
		fmt.Fprintf(&b, "Placed on %s (best of %d host(s) able to take it, policy %s): ", c.Name, considered, req.Policy)
	}
	switch r.fit {
	case 0:
		fmt.Fprintf(&b, "the image (%s with headroom) fits in the %s available without any offload", decide.Bytes(c.NeedBytes), decide.Bytes(c.AvailableBytes))
	case 1:
		state := "idle"
		if c.LLMBusy {
			state = "busy"
		}
		fmt.Fprintf(&b, "no host fits it without an offload; here the %s LLM (%s) is the least disruptive to stop, leaving %s for the %s it needs",
			state, decide.Bytes(c.LLMBytes), decide.Bytes(c.AfterOffloadBytes), decide.Bytes(c.NeedBytes))
	default:
		fmt.Fprintf(&b, "no host has the %s it needs even after an offload; this one comes closest (%s after offload)", decide.Bytes(c.NeedBytes), decide.Bytes(c.AfterOffloadBytes))
	}
	switch {
	case c.ModelLoaded:
		b.WriteString(", and its diffusion engine (sd-server) already has the model loaded.")
	case c.LoadsPerImage:
		b.WriteString("; its diffusion engine runs sd-cli, which loads the model for this image.")
	default:
		b.WriteString("; its diffusion engine has to load the model.")
	}
	return b.String()
}

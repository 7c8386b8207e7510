package jobs

import (
	"math"
	"slices"
	"strings"
	"unicode/utf8"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	"github.com/genailab/genailab/pkg/grpcerr"
)

// Samplers are the sampler names ImageParams accepts.
var Samplers = []string{"euler_a", "euler", "heun", "dpm2", "dpm++2s_a", "dpm++2m", "dpm++2mv2", "lcm"}

// MaxPromptChars bounds prompts.
const MaxPromptChars = 4000

// Validate checks image parameters at the API edge, with the contract's rules, so that a
// bad request is refused at once instead of failing after waiting in the queue.
func Validate(p *diffusionv1.ImageParams) error {
	if p == nil {
		return grpcerr.Invalidf("params are required")
	}
	if strings.TrimSpace(p.GetPrompt()) == "" {
		return grpcerr.Invalidf("prompt is required")
	}
	if n := utf8.RuneCountInString(p.GetPrompt()); n > MaxPromptChars {
		return grpcerr.Invalidf("prompt is too long: %d characters, at most %d", n, MaxPromptChars)
	}
	for _, d := range []struct {
		name string
		v    int32
	}{{"width", p.GetWidth()}, {"height", p.GetHeight()}} {
		if d.v != 0 && (d.v < 64 || d.v > 2048 || d.v%64 != 0) {
			return grpcerr.Invalidf("%s must be a multiple of 64 between 64 and 2048, got %d", d.name, d.v)
		}
	}
	if s := p.GetSteps(); s != 0 && (s < 1 || s > 150) {
		return grpcerr.Invalidf("steps must be between 1 and 150, got %d", s)
	}
	if p.CfgScale != nil {
		if c := p.GetCfgScale(); math.IsNaN(float64(c)) || c < 0 || c > 30 {
			return grpcerr.Invalidf("cfgScale must be between 0 and 30, got %v", c)
		}
	}
	if p.Seed != nil && p.GetSeed() > math.MaxUint32 {
		return grpcerr.Invalidf("seed must be at most %d (or negative for a random seed), got %d", uint64(math.MaxUint32), p.GetSeed())
	}
	if s := p.GetSampler(); s != "" && !slices.Contains(Samplers, s) {
		return grpcerr.Invalidf("unknown sampler %q: use one of %s", s, strings.Join(Samplers, ", "))
	}
	return nil
}

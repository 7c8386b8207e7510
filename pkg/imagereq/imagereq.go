// Package imagereq is the one validator of image generation requests: the orchestrator checks
// with it before anything is queued or any LLM offloaded, the diffusion service and its seed
// HTTP wrapper before the engine runs, the gateway's OpenAI surface before it calls anything.
// It also resolves the defaults (the seed's: 512x512, 20 steps, cfg scale 7.5, sampler euler_a, random seed).
package imagereq

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"unicode/utf8"
)

// ErrInvalid is wrapped by every validation error; the message after it says what is wrong.
var ErrInvalid = errors.New("invalid image parameters")

// Limits and defaults.
const (
	MaxPromptChars = 4000
	MinSize        = 64
	MaxSize        = 2048
	SizeMultiple   = 64
	MinSteps       = 1
	MaxSteps       = 150
	MinCFGScale    = 0
	MaxCFGScale    = 30

	// MaxSeed: the seed contract's response carries the seed as a 32-bit number.
	MaxSeed = math.MaxUint32

	DefaultSize     = 512
	DefaultSteps    = 20
	DefaultCFGScale = 7.5
	DefaultSampler  = "euler_a"
)

// Samplers are the sampler names accepted (the seed's ImageSampler; sd.cpp knows them all).
var Samplers = []string{"euler_a", "euler", "heun", "dpm2", "dpm++2s_a", "dpm++2m", "dpm++2mv2", "lcm"}

// Request is an image request as a client sends it. A nil field was not sent and takes its
// default; a field that was sent is checked as it is, so an explicit 0 width, height or
// steps is refused (the protos carry these fields with explicit presence for this). An
// empty sampler means the default.
type Request struct {
	Prompt         string
	NegativePrompt string
	Width, Height  *int
	Steps          *int
	CFGScale       *float64
	Seed           *int64
	Sampler        string
}

// Params are validated parameters with every default resolved.
type Params struct {
	Prompt         string
	NegativePrompt string
	Width, Height  int
	Steps          int
	CFGScale       float64
	// Seed is never negative. RandomSeed tells that it was drawn here.
	Seed       int64
	RandomSeed bool
	Sampler    string
}

// Resolve validates r and fills in the defaults; a missing or negative seed is drawn from
// rng (math/rand/v2's global source when nil). Errors wrap ErrInvalid.
func Resolve(r Request, rng *rand.Rand) (Params, error) {
	p := Params{
		Prompt:         r.Prompt,
		NegativePrompt: r.NegativePrompt,
		Width:          orDefault(r.Width, DefaultSize),
		Height:         orDefault(r.Height, DefaultSize),
		Steps:          orDefault(r.Steps, DefaultSteps),
		CFGScale:       DefaultCFGScale,
		Sampler:        r.Sampler,
	}
	if strings.TrimSpace(p.Prompt) == "" {
		return Params{}, invalid("prompt is required")
	}
	if err := checkText("prompt", p.Prompt); err != nil {
		return Params{}, err
	}
	if err := checkText("negativePrompt", p.NegativePrompt); err != nil {
		return Params{}, err
	}
	if err := checkSize("width", p.Width); err != nil {
		return Params{}, err
	}
	if err := checkSize("height", p.Height); err != nil {
		return Params{}, err
	}
	if p.Steps < MinSteps || p.Steps > MaxSteps {
		return Params{}, invalid("steps must be within %d-%d, got %d", MinSteps, MaxSteps, p.Steps)
	}
	if r.CFGScale != nil {
		p.CFGScale = *r.CFGScale
	}
	if math.IsNaN(p.CFGScale) || p.CFGScale < MinCFGScale || p.CFGScale > MaxCFGScale {
		return Params{}, invalid("cfgScale must be within %d-%d, got %v", MinCFGScale, MaxCFGScale, p.CFGScale)
	}
	if p.Sampler == "" {
		p.Sampler = DefaultSampler
	}
	if !slices.Contains(Samplers, p.Sampler) {
		return Params{}, invalid("sampler %q is not supported (use one of %s)", p.Sampler, strings.Join(Samplers, ", "))
	}
	if r.Seed != nil && *r.Seed > MaxSeed {
		return Params{}, invalid("seed must be at most %d (or negative for a random seed), got %d", int64(MaxSeed), *r.Seed)
	}
	if r.Seed != nil && *r.Seed >= 0 {
		p.Seed = *r.Seed
	} else {
		p.Seed, p.RandomSeed = RandomSeed(rng), true
	}
	return p, nil
}

// RandomSeed draws a seed in [0, 2^31): positive, and exact as a JSON number everywhere.
func RandomSeed(rng *rand.Rand) int64 {
	if rng == nil {
		return rand.Int64N(math.MaxInt32)
	}
	return rng.Int64N(math.MaxInt32)
}

// orDefault is *v, or def when the field was not sent.
func orDefault(v *int, def int) int {
	if v == nil {
		return def
	}
	return *v
}

func checkText(name, s string) error {
	if n := utf8.RuneCountInString(s); n > MaxPromptChars {
		return invalid("%s is too long: %d characters (at most %d)", name, n, MaxPromptChars)
	}
	if !utf8.ValidString(s) {
		return invalid("%s is not valid UTF-8", name)
	}
	if strings.ContainsRune(s, 0) {
		return invalid("%s contains a NUL character", name)
	}
	return nil
}

func checkSize(name string, v int) error {
	if v < MinSize || v > MaxSize || v%SizeMultiple != 0 {
		return invalid("%s must be a multiple of %d within %d-%d, got %d", name, SizeMultiple, MinSize, MaxSize, v)
	}
	return nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Package imagereq is the one validator of image generation requests: the orchestrator checks
// with it before anything is queued or any LLM offloaded, the diffusion service and its seed
// HTTP wrapper before the engine runs, the gateway's OpenAI surface before it calls anything.
// It also resolves the defaults (the seed's: 512x512, 20 steps, cfg scale 7.5, sampler euler_a, random seed;
// no previews, one image, strength 0.75 for an edit), and checks the uploaded images of an edit once
// (edit.go): decodable PNG or JPEG, within the size limits, the mask the size of the image.
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

	// MaxBatch is the most images one request may ask for (n): sd-server's own limit too.
	MaxBatch = 8
	// DefaultPreviewInterval: a preview after every sampling step.
	DefaultPreviewInterval = 1
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
	// Preview, when not nil, asks for previews; Preview.Method "" means none.
	Preview *PreviewRequest
	// N is the number of images (a batch); nil means 1.
	N *int
	// InitImage (PNG or JPEG bytes), when not empty, makes the request an edit (img2img);
	// Mask, optional, repaints only its white part; Strength (nil: DefaultStrength) is how
	// much of the image is replaced.
	InitImage []byte
	Mask      []byte
	Strength  *float64
}

// PreviewRequest is the preview option as sent.
type PreviewRequest struct {
	// Method is "proj", "tae", "vae", or "" for none.
	Method string
	// Interval is the number of sampling steps between previews; nil means 1.
	Interval *int
	// Noisy previews the model's noisy input instead of its denoised estimate.
	Noisy bool
}

// Preview is the resolved preview option; the zero value means no previews.
type Preview struct {
	Method   string
	Interval int
	Noisy    bool
}

// Enabled tells whether previews were asked for.
func (p Preview) Enabled() bool { return p.Method != "" }

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
	// Preview is the zero Preview when none was asked for.
	Preview Preview
	// N is the number of images, 1..MaxBatch; image i has seed Seed+i.
	N int
	// Edit is nil for text-to-image.
	Edit *Edit
}

// Resolve validates r and fills in the defaults; a missing or negative seed is drawn from
// rng (math/rand/v2's global source when nil). Errors wrap ErrInvalid.
func Resolve(r Request, rng *rand.Rand) (Params, error) {
	edit, err := resolveEdit(r)
	if err != nil {
		return Params{}, err
	}
	if edit != nil {
		// An edit's size is the image's: unset dimensions take it, set ones must equal it.
		if r.Width == nil {
			r.Width = &edit.Width
		}
		if r.Height == nil {
			r.Height = &edit.Height
		}
	}
	p := Params{
		Edit:           edit,
		N:              orDefault(r.N, 1),
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
	if edit != nil && (edit.Width != p.Width || edit.Height != p.Height) {
		return Params{}, invalid("the image is %dx%d but the request asks for %dx%d (an edit keeps the image's size)", edit.Width, edit.Height, p.Width, p.Height)
	}
	if p.N < 1 || p.N > MaxBatch {
		return Params{}, invalid("n must be within 1-%d, got %d", MaxBatch, p.N)
	}
	if p.Preview, err = resolvePreview(r.Preview); err != nil {
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
	if maxSeed := int64(MaxSeed) - int64(p.N-1); r.Seed != nil && *r.Seed > maxSeed {
		return Params{}, invalid("seed must be at most %d (or negative for a random seed), got %d", maxSeed, *r.Seed)
	}
	if r.Seed != nil && *r.Seed >= 0 {
		p.Seed = *r.Seed
	} else {
		p.Seed, p.RandomSeed = RandomSeed(rng), true
	}
	return p, nil
}

// PreviewMethods are the preview methods accepted (sd-cli --preview).
var PreviewMethods = []string{"proj", "tae", "vae"}

// MaxPreviewInterval is the largest interval between previews (the most steps).
const MaxPreviewInterval = MaxSteps

func resolvePreview(r *PreviewRequest) (Preview, error) {
	if r == nil || r.Method == "" {
		if r != nil && (r.Interval != nil || r.Noisy) {
			return Preview{}, invalid("preview interval and noisy need a preview method (%s)", strings.Join(PreviewMethods, ", "))
		}
		return Preview{}, nil
	}
	if !slices.Contains(PreviewMethods, r.Method) {
		return Preview{}, invalid("preview method %q is not supported (use one of %s)", r.Method, strings.Join(PreviewMethods, ", "))
	}
	p := Preview{Method: r.Method, Interval: orDefault(r.Interval, DefaultPreviewInterval), Noisy: r.Noisy}
	if p.Interval < 1 || p.Interval > MaxPreviewInterval {
		return Preview{}, invalid("preview interval must be within 1-%d, got %d", MaxPreviewInterval, p.Interval)
	}
	return p, nil
}

// Seeds are the seeds of the images of a batch, in order: Seed, Seed+1, ... as
// stable-diffusion.cpp's batch count uses them, so that image i is made again alone with
// seed Seed+i.
func (p Params) Seeds() []int64 {
	n := max(p.N, 1)
	s := make([]int64, n)
	for i := range s {
		s[i] = p.Seed + int64(i)
	}
	return s
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

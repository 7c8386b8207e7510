package imagereq

import (
	"bytes"
	"errors"
	"image"
	"image/png"
	"math"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
)

// Issue 14's fault suite: the one image-request validator, fed with what the gRPC edges
// decode (ImageParams wire bytes) and with what the JSON edges decode (any strings and
// numbers). A refused request wraps ErrInvalid and says why; an accepted one has every
// value within its limits and reproduces itself through ToProto and FromProto. The corpus
// is in testdata/fuzz; `go test` runs it, `go test -fuzz FuzzValidateProto` extends it.

// checkResolved is the property every accepted request must hold.
func checkResolved(t *testing.T, p Params) {
	t.Helper()
	switch {
	case strings.TrimSpace(p.Prompt) == "" || !utf8.ValidString(p.Prompt) || strings.ContainsRune(p.Prompt, 0):
		t.Fatalf("accepted prompt %q", p.Prompt)
	case utf8.RuneCountInString(p.Prompt) > MaxPromptChars || utf8.RuneCountInString(p.NegativePrompt) > MaxPromptChars:
		t.Fatalf("accepted a prompt over %d characters", MaxPromptChars)
	case !utf8.ValidString(p.NegativePrompt) || strings.ContainsRune(p.NegativePrompt, 0):
		t.Fatalf("accepted negative prompt %q", p.NegativePrompt)
	case p.Width < MinSize || p.Width > MaxSize || p.Width%SizeMultiple != 0,
		p.Height < MinSize || p.Height > MaxSize || p.Height%SizeMultiple != 0:
		t.Fatalf("accepted size %dx%d", p.Width, p.Height)
	case p.Steps < MinSteps || p.Steps > MaxSteps:
		t.Fatalf("accepted steps %d", p.Steps)
	case math.IsNaN(p.CFGScale) || p.CFGScale < MinCFGScale || p.CFGScale > MaxCFGScale:
		t.Fatalf("accepted cfg scale %v", p.CFGScale)
	case !slices.Contains(Samplers, p.Sampler):
		t.Fatalf("accepted sampler %q", p.Sampler)
	case p.Seed < 0 || p.Seed+int64(p.N-1) > MaxSeed:
		t.Fatalf("accepted seed %d for %d images", p.Seed, p.N)
	case p.N < 1 || p.N > MaxBatch:
		t.Fatalf("accepted n %d", p.N)
	case p.Preview.Enabled() && (!slices.Contains(PreviewMethods, p.Preview.Method) || p.Preview.Interval < 1 || p.Preview.Interval > MaxPreviewInterval):
		t.Fatalf("accepted preview %+v", p.Preview)
	case p.Edit != nil && (p.Edit.Width != p.Width || p.Edit.Height != p.Height || !(p.Edit.Strength >= 0 && p.Edit.Strength <= 1)):
		t.Fatalf("accepted edit %v for %dx%d", p.Edit, p.Width, p.Height)
	}
}

// checkRefused is the property of every refusal: ErrInvalid, and a reason after it.
func checkRefused(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("refusal %v does not wrap ErrInvalid", err)
	}
	if reason := strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": "); strings.TrimSpace(reason) == "" || reason == err.Error() {
		t.Fatalf("refusal %q gives no reason", err)
	}
}

func FuzzValidateProto(f *testing.F) {
	cfg, seed, big, zero := float32(7.5), int64(42), int64(math.MaxUint32)+1, int64(0)
	nan, neg := float32(math.NaN()), float32(-1)
	for _, m := range []*diffusionv1.ImageParams{
		{Prompt: "a lighthouse at dusk", Width: ptr[int32](512), Height: ptr[int32](512), Steps: ptr[int32](20), CfgScale: &cfg, Seed: &seed, Sampler: "euler_a"}, // the golden request
		{Prompt: "x", Width: ptr[int32](64), Height: ptr[int32](64), Steps: ptr[int32](1)},
		{Prompt: "x", Width: ptr[int32](0), Height: ptr[int32](0), Steps: ptr[int32](0)}, // explicit zeros are refused
		{},                                    // explicit nothing
		{Prompt: "x", Seed: &zero},            // seed 0 is a seed, not "random"
		{Prompt: "x", CfgScale: new(float32)}, // cfg 0 is allowed
		{Prompt: "x", Seed: &big},
		{Prompt: "x", CfgScale: &nan},
		{Prompt: "x", CfgScale: &neg},
		{Prompt: "x", Width: ptr[int32](math.MaxInt32), Height: ptr[int32](math.MinInt32), Steps: ptr[int32](math.MaxInt32)},
		{Prompt: "x", Width: ptr[int32](65), Steps: ptr[int32](-1)},
		{Prompt: "nul\x00inside"},
		{Prompt: "   "},
		{Prompt: strings.Repeat("é", MaxPromptChars+1)},
		{Prompt: "x", Sampler: "../../etc/passwd"},
		// Issue 18: a batch with previews, an edit with a mask, and their bad forms.
		{Prompt: "x", N: ptr[int32](3), Preview: &diffusionv1.PreviewOptions{Method: diffusionv1.PreviewMethod_PREVIEW_METHOD_PROJ, Interval: ptr[int32](2)}},
		{Prompt: "x", InitImage: fuzzPNG(f, 64, 64), Mask: fuzzPNG(f, 64, 64), Strength: ptr[float32](0.5)},
		{Prompt: "x", InitImage: fuzzPNG(f, 64, 64), Mask: fuzzPNG(f, 128, 64)},
		{Prompt: "x", N: ptr[int32](0), Preview: &diffusionv1.PreviewOptions{Method: 7}},
	} {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var m diffusionv1.ImageParams
		if err := proto.Unmarshal(data, &m); err != nil {
			return // gRPC refuses such bytes before any handler runs
		}
		if err := Validate(&m); err != nil {
			checkRefused(t, err)
			if _, err2 := Resolve(FromProto(&m), nil); err2 == nil || err2.Error() != err.Error() {
				t.Fatalf("Validate and Resolve disagree: %v, %v", err, err2)
			}
			return
		}
		p, err := Resolve(FromProto(&m), nil)
		if err != nil {
			t.Fatalf("Validate accepted what Resolve refuses: %v", err)
		}
		checkResolved(t, p)
		// Round trip: the message ToProto writes validates and resolves to the same values.
		again, err := Resolve(FromProto(ToProto(p)), nil)
		if err != nil {
			t.Fatalf("ToProto(%+v) is refused: %v", p, err)
		}
		again.RandomSeed = p.RandomSeed
		if !sameParams(again, p) {
			t.Fatalf("round trip: %+v, want %+v", again, p)
		}
		wire, err := proto.Marshal(ToProto(p))
		if err != nil {
			t.Fatalf("marshal resolved params: %v", err)
		}
		var back diffusionv1.ImageParams
		if err := proto.Unmarshal(wire, &back); err != nil || Validate(&back) != nil {
			t.Fatalf("resolved params do not survive the wire: %v", err)
		}
	})
}

// FuzzResolve feeds the values a JSON edge decodes: strings that need not be UTF-8 (the
// seed wrapper's decoder keeps none, but a Go client may send anything), any numbers.
// present is a bit set: 1 width, 2 height, 4 steps, 8 cfg scale, 16 seed were sent.
func FuzzResolve(f *testing.F) {
	f.Add("a lighthouse at dusk", "", 512, 512, 20, 7.5, int64(42), "euler_a", uint8(31))
	f.Add("x", "", 0, 0, 0, 0.0, int64(0), "", uint8(0))
	f.Add("x", "", 0, 0, 0, 0.0, int64(0), "", uint8(31))
	f.Add("x", "", 0, 0, 0, 0.0, int64(0), "", uint8(24))
	f.Add("\xff\xfe", "\x00", 64, 64, 1, 30.0, int64(math.MaxUint32), "lcm", uint8(31))
	f.Add("x", "", math.MaxInt, math.MinInt, math.MaxInt, math.Inf(1), int64(math.MaxInt64), "euler", uint8(31))
	f.Add("x", "", 2048, 2112, 150, math.Copysign(0, -1), int64(-1), "heun", uint8(31))
	f.Add("x", "", 64, 64, 1, math.NaN(), int64(math.MinInt64), "EULER_A", uint8(31))
	f.Fuzz(func(t *testing.T, prompt, negative string, width, height, steps int, cfg float64, seed int64, sampler string, present uint8) {
		r := Request{Prompt: prompt, NegativePrompt: negative, Sampler: sampler}
		if present&1 != 0 {
			r.Width = &width
		}
		if present&2 != 0 {
			r.Height = &height
		}
		if present&4 != 0 {
			r.Steps = &steps
		}
		hasCfg, hasSeed := present&8 != 0, present&16 != 0
		if hasCfg {
			r.CFGScale = &cfg
		}
		if hasSeed {
			r.Seed = &seed
		}
		p, err := Resolve(r, nil)
		if err != nil {
			checkRefused(t, err)
			return
		}
		checkResolved(t, p)
		if (r.Width != nil && p.Width != width) || (r.Height != nil && p.Height != height) || (r.Steps != nil && p.Steps != steps) {
			t.Fatalf("sent values changed: %+v", p)
		}
		if hasSeed && seed >= 0 && (p.Seed != seed || p.RandomSeed) {
			t.Fatalf("seed %d became %d (random %v)", seed, p.Seed, p.RandomSeed)
		}
		if p.Prompt != prompt || p.NegativePrompt != negative {
			t.Fatalf("prompts changed: %q %q", p.Prompt, p.NegativePrompt)
		}
	})
}

// fuzzPNG is a w x h PNG for the corpus.
func fuzzPNG(f *testing.F, w, h int) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, w, h))); err != nil {
		f.Fatal(err)
	}
	return b.Bytes()
}

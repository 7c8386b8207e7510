package imagereq

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
)

func ptr[T any](v T) *T { return &v }

func TestResolveDefaults(t *testing.T) {
	p, err := Resolve(Request{Prompt: "a red fox"}, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	if p.Width != 512 || p.Height != 512 || p.Steps != 20 || p.CFGScale != 7.5 || p.Sampler != "euler_a" || !p.RandomSeed || p.Seed < 0 || p.Seed >= math.MaxInt32 {
		t.Fatalf("defaults: %+v", p)
	}
	p2, _ := Resolve(Request{Prompt: "a red fox"}, rand.New(rand.NewPCG(1, 2)))
	if p2.Seed != p.Seed {
		t.Fatal("seed does not come from the given source")
	}
	p3, _ := Resolve(Request{Prompt: "x", Seed: ptr(int64(-1))}, rand.New(rand.NewPCG(3, 4)))
	if !p3.RandomSeed || p3.Seed < 0 {
		t.Fatalf("negative seed: %+v", p3)
	}
}

func TestResolveKeepsGivenValues(t *testing.T) {
	p, err := Resolve(Request{Prompt: "p", NegativePrompt: "n", Width: ptr(64), Height: ptr(2048), Steps: ptr(150),
		CFGScale: ptr(0.0), Seed: ptr(int64(0)), Sampler: "dpm++2mv2"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Params{Prompt: "p", NegativePrompt: "n", Width: 64, Height: 2048, Steps: 150, CFGScale: 0, Seed: 0, Sampler: "dpm++2mv2", N: 1}
	if p != want {
		t.Fatalf("got %+v, want %+v", p, want)
	}
}

func TestResolveRejects(t *testing.T) {
	ok := Request{Prompt: "a fox"}
	cases := map[string]func(r *Request){
		"prompt is required":       func(r *Request) { r.Prompt = "" },
		"prompt is required ":      func(r *Request) { r.Prompt = "  \n" },
		"prompt is too long":       func(r *Request) { r.Prompt = strings.Repeat("é", MaxPromptChars+1) },
		"negativePrompt is too":    func(r *Request) { r.NegativePrompt = strings.Repeat("x", MaxPromptChars+1) },
		"NUL":                      func(r *Request) { r.Prompt = "a\x00b" },
		"UTF-8":                    func(r *Request) { r.Prompt = "a\xffb" },
		"width must be a multiple": func(r *Request) { r.Width = ptr(100) },
		"width must":               func(r *Request) { r.Width = ptr(-64) },
		"height must":              func(r *Request) { r.Height = ptr(2112) },
		"height must be":           func(r *Request) { r.Height = ptr(32) },
		"steps must":               func(r *Request) { r.Steps = ptr(151) },
		"steps must be":            func(r *Request) { r.Steps = ptr(-1) },
		"cfgScale":                 func(r *Request) { r.CFGScale = ptr(30.5) },
		"cfgScale must":            func(r *Request) { r.CFGScale = ptr(-0.1) },
		"cfgScale must be":         func(r *Request) { r.CFGScale = ptr(math.NaN()) },
		"sampler \"ddim\"":         func(r *Request) { r.Sampler = "ddim" },
	}
	for want, mutate := range cases {
		r := ok
		mutate(&r)
		_, err := Resolve(r, nil)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), strings.TrimSpace(want)) {
			t.Errorf("%s: got %v", want, err)
		}
	}
	// The boundaries themselves are accepted.
	if _, err := Resolve(Request{Prompt: strings.Repeat("é", MaxPromptChars), Width: ptr(2048), Height: ptr(64), Steps: ptr(1), CFGScale: ptr(30.0)}, nil); err != nil {
		t.Errorf("boundaries rejected: %v", err)
	}
}

// TestExplicitZeroIsRefused: a width, height or steps sent as 0 is refused with the reason,
// while the same field left out takes its default, in Resolve and through the protos.
func TestExplicitZeroIsRefused(t *testing.T) {
	cases := map[string]func(r *Request){
		"width must be a multiple of 64 within 64-2048, got 0":  func(r *Request) { r.Width = ptr(0) },
		"height must be a multiple of 64 within 64-2048, got 0": func(r *Request) { r.Height = ptr(0) },
		"steps must be within 1-150, got 0":                     func(r *Request) { r.Steps = ptr(0) },
	}
	for want, mutate := range cases {
		r := Request{Prompt: "a fox"}
		mutate(&r)
		if _, err := Resolve(r, nil); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v", want, err)
		}
	}
	zero := int32(0)
	for name, p := range map[string]*diffusionv1.ImageParams{
		"width": {Prompt: "a fox", Width: &zero}, "height": {Prompt: "a fox", Height: &zero}, "steps": {Prompt: "a fox", Steps: &zero},
	} {
		if err := Validate(p); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), name+" must") {
			t.Errorf("proto %s 0: got %v", name, err)
		}
	}
	// Left out: the defaults, and ToProto writes them back with their presence.
	p, err := Resolve(FromProto(&diffusionv1.ImageParams{Prompt: "a fox"}), nil)
	if err != nil || p.Width != DefaultSize || p.Height != DefaultSize || p.Steps != DefaultSteps {
		t.Fatalf("omitted fields: %+v, %v", p, err)
	}
	back := ToProto(p)
	if back.Width == nil || back.GetWidth() != DefaultSize || back.Height == nil || back.Steps == nil || back.GetSteps() != DefaultSteps {
		t.Fatalf("ToProto: %v", back)
	}
	if r := FromProto(nil); r.Width != nil || r.Height != nil || r.Steps != nil {
		t.Fatalf("FromProto(nil): %+v", r)
	}
}

package imagereq

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
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
	p, err := Resolve(Request{Prompt: "p", NegativePrompt: "n", Width: 64, Height: 2048, Steps: 150,
		CFGScale: ptr(0.0), Seed: ptr(int64(0)), Sampler: "dpm++2mv2"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Params{Prompt: "p", NegativePrompt: "n", Width: 64, Height: 2048, Steps: 150, CFGScale: 0, Seed: 0, Sampler: "dpm++2mv2"}
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
		"width must be a multiple": func(r *Request) { r.Width = 100 },
		"width must":               func(r *Request) { r.Width = -64 },
		"height must":              func(r *Request) { r.Height = 2112 },
		"height must be":           func(r *Request) { r.Height = 32 },
		"steps must":               func(r *Request) { r.Steps = 151 },
		"steps must be":            func(r *Request) { r.Steps = -1 },
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
	if _, err := Resolve(Request{Prompt: strings.Repeat("é", MaxPromptChars), Width: 2048, Height: 64, Steps: 1, CFGScale: ptr(30.0)}, nil); err != nil {
		t.Errorf("boundaries rejected: %v", err)
	}
}

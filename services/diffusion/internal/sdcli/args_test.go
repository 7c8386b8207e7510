package sdcli

import (
	"reflect"
	"testing"

	"github.com/genailab/genailab/pkg/imagereq"
	"github.com/genailab/genailab/services/diffusion/internal/sdargs"
)

func TestArgs(t *testing.T) {
	p := imagereq.Params{Prompt: "a red fox", NegativePrompt: "blurry", Width: 64, Height: 128, Steps: 2,
		CFGScale: 7.5, Seed: 42, Sampler: "euler_a"}
	got := Args(sdargs.Model{Path: "/m/tinysd.gguf"}, sdargs.Memory{}, 0, p, "/tmp/x/image.png")
	want := []string{"-m", "/m/tinysd.gguf", "-p", "a red fox", "-n", "blurry", "-W", "64", "-H", "128",
		"--steps", "2", "--cfg-scale", "7.5", "-s", "42", "--sampling-method", "euler_a", "-o", "/tmp/x/image.png"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("full model:\n got %q\nwant %q", got, want)
	}

	p.CFGScale, p.NegativePrompt = 0, ""
	got = Args(sdargs.Model{DiffusionModel: "d", ClipL: "cl", ClipG: "cg", T5XXL: "t5", LLM: "llm", VAE: "vae"},
		sdargs.Memory{OffloadToCPU: true, VAETiling: true, ClipOnCPU: true, VAEOnCPU: true, DiffusionFA: true}, 6, p, "o.png")
	want = []string{"--diffusion-model", "d", "--clip_l", "cl", "--clip_g", "cg", "--t5xxl", "t5", "--llm", "llm", "--vae", "vae",
		"-p", "a red fox", "-n", "", "-W", "64", "-H", "128", "--steps", "2", "--cfg-scale", "0", "-s", "42",
		"--sampling-method", "euler_a", "-t", "6",
		"--offload-to-cpu", "--vae-tiling", "--clip-on-cpu", "--vae-on-cpu", "--diffusion-fa", "-o", "o.png"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("components:\n got %q\nwant %q", got, want)
	}
}

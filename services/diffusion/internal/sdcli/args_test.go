package sdcli

import (
	"bytes"
	"image"
	"image/png"
	"reflect"
	"slices"
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

func TestFeatureArgsAndBatchNames(t *testing.T) {
	p := imagereq.Params{N: 3, Preview: imagereq.Preview{Method: "tae", Interval: 2, Noisy: true},
		Edit: &imagereq.Edit{Image: []byte{1}, Mask: []byte{2}, Strength: 0.3}}
	got := FeatureArgs(p, Files{Preview: "/r/preview.png", InitImage: "/r/init", Mask: "/r/mask"})
	want := []string{"--preview", "tae", "--preview-path", "/r/preview.png", "--preview-interval", "2", "--preview-noisy",
		"-i", "/r/init", "--mask", "/r/mask", "--strength", "0.3"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("feature args:\n got %q\nwant %q", got, want)
	}
	if got := FeatureArgs(imagereq.Params{N: 1}, Files{}); len(got) != 0 {
		t.Errorf("plain request: %q", got)
	}
	if a := Args(sdargs.Model{Path: "m"}, sdargs.Memory{}, 0, p, "o.png"); !slices.Contains(a, "-b") || a[slices.Index(a, "-b")+1] != "3" {
		t.Errorf("batch: %q", a)
	}
	// master-827 names a batch's files image_0.png, image_1.png, ... (checked on the real
	// sd-cli by the server package's batch test).
	if OutputPath("/r/image.png", 0, 1) != "/r/image.png" || OutputPath("/r/image.png", 2, 3) != "/r/image_2.png" {
		t.Error("output names")
	}
}

func TestThumbnailBoundsTheLongSide(t *testing.T) {
	for _, c := range []struct{ w, h, tw, th int }{{512, 512, 256, 256}, {320, 192, 256, 153}, {192, 640, 76, 256}, {64, 64, 64, 64}} {
		m := image.NewNRGBA(image.Rect(0, 0, c.w, c.h))
		for i := range m.Pix {
			m.Pix[i] = 200
			if i%4 == 3 {
				m.Pix[i] = 255
			}
		}
		var b bytes.Buffer
		if err := png.Encode(&b, m); err != nil {
			t.Fatal(err)
		}
		out, w, h, err := thumbnail(b.Bytes(), MaxPreviewSide)
		if err != nil || w != c.tw || h != c.th {
			t.Fatalf("%dx%d: %dx%d %v", c.w, c.h, w, h, err)
		}
		d, err := png.Decode(bytes.NewReader(out))
		if err != nil || d.Bounds().Dx() != w || d.Bounds().Dy() != h {
			t.Fatalf("%dx%d: decoded %v %v", c.w, c.h, d.Bounds(), err)
		}
		if r, _, _, _ := d.At(w/2, h/2).RGBA(); r>>8 != 200 {
			t.Errorf("%dx%d: averaged colour %d, want 200", c.w, c.h, r>>8)
		}
	}
	if _, _, _, err := thumbnail([]byte("partial"), MaxPreviewSide); err == nil {
		t.Error("a partial file decoded")
	}
}

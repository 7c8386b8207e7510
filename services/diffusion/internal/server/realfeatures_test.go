package server

// Issue 18 on the real stable-diffusion.cpp (sd-cli and sd-server of master-827, the tiny
// model from testenv): previews while sampling, batches, img2img and inpainting, and what
// each mode refuses. The tiny model's weights are random, its VAE included, so an image
// cannot come back through it: "close to the input" is measured against the engine's own
// round trip of the input (an edit at strength 0.05, which runs no denoising step), and
// against a strength 1.0 edit, which replaces it.

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
)

func decodePNG(t *testing.T, b []byte) image.Image {
	t.Helper()
	m, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	return m
}

// samePixels reports whether two PNGs have identical pixels (their metadata may differ).
func samePixels(t *testing.T, a, b []byte) bool {
	t.Helper()
	ma, mb := decodePNG(t, a), decodePNG(t, b)
	if ma.Bounds() != mb.Bounds() {
		return false
	}
	r := ma.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if color.NRGBAModel.Convert(ma.At(x, y)) != color.NRGBAModel.Convert(mb.At(x, y)) {
				return false
			}
		}
	}
	return true
}

// distance is the mean absolute difference of the RGB channels (0..255) over the columns
// x0..x1 of two PNGs of the same size.
func distance(t *testing.T, a, b []byte, x0, x1 int) float64 {
	t.Helper()
	ma, mb := decodePNG(t, a), decodePNG(t, b)
	var sum, n float64
	for y := ma.Bounds().Min.Y; y < ma.Bounds().Max.Y; y++ {
		for x := x0; x < x1; x++ {
			ca, cb := color.NRGBAModel.Convert(ma.At(x, y)).(color.NRGBA), color.NRGBAModel.Convert(mb.At(x, y)).(color.NRGBA)
			for _, d := range []int{int(ca.R) - int(cb.R), int(ca.G) - int(cb.G), int(ca.B) - int(cb.B)} {
				sum += float64(max(d, -d))
			}
			n += 3
		}
	}
	return sum / n
}

// testPNG is a w x h PNG where f gives each pixel.
func testPNG(t *testing.T, w, h int, f func(x, y int) color.NRGBA) []byte {
	t.Helper()
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			m.SetNRGBA(x, y, f(x, y))
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, m); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func gradient(t *testing.T, w, h int) []byte {
	return testPNG(t, w, h, func(x, y int) color.NRGBA {
		return color.NRGBA{uint8(x * 255 / w), uint8(y * 255 / h), 128, 255}
	})
}

func mustGenerate(t *testing.T, s *service, p *diffusionv1.ImageParams) generation {
	t.Helper()
	g := generate(context.Background(), s.client, p, nil)
	if g.err != nil {
		t.Fatal(g.err)
	}
	if g.result == nil {
		t.Fatal("no result")
	}
	return g
}

func previews(ps []*diffusionv1.Progress) []*diffusionv1.Preview {
	var out []*diffusionv1.Preview
	for _, p := range ps {
		if p.GetPreview() != nil {
			out = append(out, p.GetPreview())
		}
	}
	return out
}

func withPreview(p *diffusionv1.ImageParams, m diffusionv1.PreviewMethod, interval int32) *diffusionv1.ImageParams {
	p.Preview = &diffusionv1.PreviewOptions{Method: m, Interval: proto.Int32(interval)}
	return p
}

func TestRealPreviews(t *testing.T) {
	s := startRealService(t, nil)
	info := s.startReal(t, diffusionv1.EngineMode_ENGINE_MODE_CLI)
	if c := info.GetCapabilities(); len(c.GetPreviewMethods()) != 3 || !c.GetEdits() || !c.GetMasks() || c.GetMaxBatch() != 8 {
		t.Fatalf("CLI capabilities %v", c)
	}

	// proj, every step: previews with increasing steps that decode, then the same pixels as
	// without previews.
	with := mustGenerate(t, s, withPreview(fox(128, 128, 6), diffusionv1.PreviewMethod_PREVIEW_METHOD_PROJ, 1))
	pvs := previews(with.progress)
	if len(pvs) < 2 {
		t.Fatalf("%d previews for 6 steps", len(pvs))
	}
	for i, pv := range pvs {
		m := decodePNG(t, pv.Png)
		if m.Bounds().Dx() != int(pv.Width) || m.Bounds().Dy() != int(pv.Height) || pv.Width < 1 || pv.Width > 256 || pv.Height > 256 {
			t.Errorf("preview %d: %dx%d, says %dx%d", i, m.Bounds().Dx(), m.Bounds().Dy(), pv.Width, pv.Height)
		}
		if pv.Step < 1 || pv.Step > 6 || i > 0 && pv.Step <= pvs[i-1].Step {
			t.Errorf("preview steps %v", stepsOf(pvs))
		}
	}
	t.Logf("proj previews at steps %v, %dx%d", stepsOf(pvs), pvs[0].Width, pvs[0].Height)
	without := mustGenerate(t, s, fox(128, 128, 6))
	if len(previews(without.progress)) != 0 {
		t.Error("previews without asking")
	}
	if !samePixels(t, with.result.Png, without.result.Png) {
		t.Error("the image made with previews differs from the one without")
	}
	if with.result.GetParams().GetPreview().GetMethod() != diffusionv1.PreviewMethod_PREVIEW_METHOD_PROJ {
		t.Errorf("result params %v", with.result.GetParams())
	}

	// tae at 320x320: full-size previews, downscaled to 256 on the long side.
	tae := mustGenerate(t, s, withPreview(fox(320, 192, 2), diffusionv1.PreviewMethod_PREVIEW_METHOD_TAE, 1))
	tp := previews(tae.progress)
	if len(tp) == 0 {
		t.Fatal("no tae previews")
	}
	if last := tp[len(tp)-1]; last.Width != 256 || last.Height != 153 {
		t.Errorf("tae preview of 320x192 is %dx%d, want 256x153", last.Width, last.Height)
	}

	// interval 2: a preview every second step. (sd-cli master-827 rewrites the file at every
	// step whatever --preview-interval says; the service keeps the interval itself.)
	iv := previews(mustGenerate(t, s, withPreview(fox(64, 64, 6), diffusionv1.PreviewMethod_PREVIEW_METHOD_PROJ, 2)).progress)
	if got := stepsOf(iv); !slices.Equal(got, []int32{2, 4, 6}) {
		t.Errorf("interval 2 over 6 steps: previews at %v", stepsOf(iv))
	}
	t.Logf("interval 2: previews at steps %v", stepsOf(iv))
}

func stepsOf(pvs []*diffusionv1.Preview) []int32 {
	var s []int32
	for _, p := range pvs {
		s = append(s, p.Step)
	}
	return s
}

func TestRealBatch(t *testing.T) {
	for _, mode := range realModes {
		t.Run(modeName(mode), func(t *testing.T) {
			s := startRealService(t, nil)
			s.startReal(t, mode)
			p := fox(64, 64, 3)
			p.Seed, p.N = proto.Int64(100), proto.Int32(3)
			g := mustGenerate(t, s, p)
			res := g.result
			if len(res.Batch) != 2 || res.Seed != 100 || res.Batch[0].Seed != 101 || res.Batch[1].Seed != 102 {
				t.Fatalf("batch: seed %d, %d more %v", res.Seed, len(res.Batch), res.Batch)
			}
			imgs := [][]byte{res.Png, res.Batch[0].Png, res.Batch[1].Png}
			for i := range imgs {
				for j := i + 1; j < len(imgs); j++ {
					if samePixels(t, imgs[i], imgs[j]) {
						t.Errorf("images %d and %d are the same", i, j)
					}
				}
			}
			last := g.progress[len(g.progress)-1]
			if last.ImageCount != 3 || last.Step != 9 || last.TotalSteps != 9 {
				t.Errorf("last progress %v", last)
			}
			sawLast := slices.ContainsFunc(g.progress, func(p *diffusionv1.Progress) bool { return p.ImageIndex == 2 })
			if !sawLast {
				t.Error("no progress of the third image")
			}
			// Each image is made again alone with its reported seed.
			for i, seed := range []int64{100, 101, 102} {
				alone := fox(64, 64, 3)
				alone.Seed = proto.Int64(seed)
				if one := mustGenerate(t, s, alone); !samePixels(t, one.result.Png, imgs[i]) {
					t.Errorf("image %d (seed %d) differs from the same seed alone", i, seed)
				}
			}
		})
	}
}

func TestRealEdits(t *testing.T) {
	s := startRealService(t, nil)
	s.startReal(t, diffusionv1.EngineMode_ENGINE_MODE_CLI)
	edit := func(init, mask []byte, strength float32, seed int64) []byte {
		p := &diffusionv1.ImageParams{Prompt: "a red fox", Steps: proto.Int32(10), Seed: proto.Int64(seed), InitImage: init, Mask: mask, Strength: proto.Float32(strength)}
		g := mustGenerate(t, s, p)
		if rp := g.result.GetParams(); rp.InitImage != nil || rp.Mask != nil || rp.GetStrength() != strength {
			t.Errorf("result params carry the uploads or lose the strength: strength %v, %d bytes", rp.GetStrength(), len(rp.InitImage))
		}
		return g.result.Png
	}
	flat := func(v uint8) []byte {
		return testPNG(t, 128, 128, func(int, int) color.NRGBA { return color.NRGBA{v, v, v, 255} })
	}
	white, black := flat(255), flat(0)
	low7, low8 := edit(white, nil, 0.05, 7), edit(white, nil, 0.05, 8)
	full := edit(white, nil, 1, 7)
	lowBlack := edit(black, nil, 0.05, 7)
	seedGap, inputGap, fullGap := distance(t, low7, low8, 0, 128), distance(t, low7, lowBlack, 0, 128), distance(t, low7, full, 0, 128)
	t.Logf("strength 0.05: seeds 7/8 %.1f apart, white/black input %.1f; strength 1.0 vs 0.05: %.1f", seedGap, inputGap, fullGap)
	if seedGap > 10 {
		t.Errorf("strength 0.05 depends on the seed (%.1f): the input should decide the image", seedGap)
	}
	// The random VAE squeezes inputs together, but the input still decides more than the seed.
	if inputGap < 15 || inputGap < 2*seedGap {
		t.Errorf("strength 0.05 barely depends on the input (%.1f, seeds %.1f)", inputGap, seedGap)
	}
	if fullGap < 60 {
		t.Errorf("strength 1.0 is close to the input's round trip (%.1f)", fullGap)
	}

	init := gradient(t, 128, 128)
	trip := edit(init, nil, 0.05, 7)
	// Inpainting the right half (white) keeps the left quarter, far from the seam, as the
	// round trip has it, and repaints the right half.
	mask := testPNG(t, 128, 128, func(x, _ int) color.NRGBA {
		if x >= 64 {
			return color.NRGBA{255, 255, 255, 255}
		}
		return color.NRGBA{0, 0, 0, 255}
	})
	inpainted := edit(init, mask, 1, 7)
	kept, repainted := distance(t, trip, inpainted, 0, 32), distance(t, trip, inpainted, 64, 128)
	t.Logf("mask: kept quarter %.1f from the round trip, repainted half %.1f", kept, repainted)
	if kept > 15 || repainted < 60 {
		t.Errorf("mask: kept region %.1f apart (want <= 15), repainted %.1f (want >= 60)", kept, repainted)
	}
}

// Bad features are refused before the engine runs: InvalidArgument with the reason for bad
// values, FailedPrecondition naming the mode for what server mode cannot do.
func TestRealFeatureRefusals(t *testing.T) {
	s := startRealService(t, nil)
	s.startReal(t, diffusionv1.EngineMode_ENGINE_MODE_CLI)
	ctx := context.Background()
	img := gradient(t, 64, 64)
	bad := map[string]*diffusionv1.ImageParams{
		"not a PNG or JPEG":               {Prompt: "x", InitImage: []byte("GIF89a, or rather not")},
		"the mask is 128x64":              {Prompt: "x", InitImage: img, Mask: gradient(t, 128, 64)},
		"n must be within 1-8, got 0":     {Prompt: "x", N: proto.Int32(0)},
		"n must be within 1-8, got 9":     {Prompt: "x", N: proto.Int32(9)},
		"strength must be within 0-1":     {Prompt: "x", InitImage: img, Strength: proto.Float32(2)},
		"preview interval must be within": {Prompt: "x", Preview: &diffusionv1.PreviewOptions{Method: diffusionv1.PreviewMethod_PREVIEW_METHOD_PROJ, Interval: proto.Int32(0)}},
	}
	for want, p := range bad {
		g := generate(ctx, s.client, p, nil)
		if code(g.err) != codes.InvalidArgument || !strings.Contains(g.err.Error(), want) || len(g.progress) != 0 {
			t.Errorf("%s: %v (%d progress messages)", want, g.err, len(g.progress))
		}
	}
	// An inpainting edit in CLI mode, to compare with server mode's.
	mask := testPNG(t, 64, 64, func(x, _ int) color.NRGBA {
		if x >= 32 {
			return color.NRGBA{255, 255, 255, 255}
		}
		return color.NRGBA{0, 0, 0, 255}
	})
	editReq := func() *diffusionv1.ImageParams {
		return &diffusionv1.ImageParams{Prompt: "x", Steps: proto.Int32(4), Seed: proto.Int64(7), InitImage: img, Mask: mask, Strength: proto.Float32(0.8)}
	}
	cliEdit := mustGenerate(t, s, editReq()).result.Png
	if _, err := s.client.Stop(ctx, &diffusionv1.StopRequest{}); err != nil {
		t.Fatal(err)
	}

	info := s.startReal(t, diffusionv1.EngineMode_ENGINE_MODE_SERVER)
	if c := info.GetCapabilities(); len(c.GetPreviewMethods()) != 0 || !c.GetEdits() || !c.GetMasks() || c.GetMaxBatch() != 8 || !strings.Contains(c.GetLimitations(), "server mode") {
		t.Fatalf("server capabilities %v", c)
	}
	// sd-server's img_gen runs the same edit: the same pixels as sd-cli.
	if srv := mustGenerate(t, s, editReq()).result.Png; !samePixels(t, srv, cliEdit) {
		t.Errorf("the inpainting edit in server mode differs from CLI mode's (%.1f apart)", distance(t, srv, cliEdit, 0, 64))
	}
	for name, p := range map[string]*diffusionv1.ImageParams{
		"proj previews are not supported in server mode": withPreview(fox(64, 64, 2), diffusionv1.PreviewMethod_PREVIEW_METHOD_PROJ, 1),
	} {
		g := generate(ctx, s.client, p, nil)
		if code(g.err) != codes.FailedPrecondition || !strings.Contains(g.err.Error(), name) || len(g.progress) != 0 {
			t.Errorf("%s: %v (%d progress messages)", name, g.err, len(g.progress))
		}
	}
	if in, err := s.client.GetInfo(ctx, &diffusionv1.GetInfoRequest{}); err != nil || in.GetInfo().GetLastError() != "" {
		t.Errorf("a refused feature became an engine error: %v %v", in.GetInfo().GetLastError(), err)
	}
}

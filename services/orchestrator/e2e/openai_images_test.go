package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	goimage "image"
	"image/color"
	"image/png"
	"net/http"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
)

// decodeB64PNG decodes an event's b64_json as a PNG.
func decodeB64PNG(t *testing.T, what, b64 string) goimage.Image {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("%s is not a PNG: %v", what, err)
	}
	return img
}

// Issue 18: the official Go SDK's streaming iterator reads the gateway's image stream end
// to end, on the real stable-diffusion.cpp: partial images (the engine's previews, which
// decode as PNGs) with increasing indexes, then each image's completed event; the SDK's
// own edit call runs img2img on an uploaded image; bad requests are refused before
// anything is queued.
func TestOpenAIImageStreamingWithTheOfficialClient(t *testing.T) {
	s := newStack(t, stackOptions{Gateway: true})
	client := openai.NewClient(option.WithBaseURL(s.gateway+"/openai/v1"), option.WithAPIKey("unused"), option.WithMaxRetries(0))
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	// steps and seed are the gateway's extensions (the default 20 steps would take long).
	stream := client.Images.GenerateStreaming(ctx, openai.ImageGenerateParams{
		Prompt: "a small house", Size: openai.ImageGenerateParamsSize("64x64"), PartialImages: openai.Int(2),
	}, option.WithJSONSet("steps", 6), option.WithJSONSet("seed", 42))
	var partials []openai.ImageGenPartialImageEvent
	var completed []openai.ImageGenCompletedEvent
	for stream.Next() {
		switch ev := stream.Current().AsAny().(type) {
		case openai.ImageGenPartialImageEvent:
			if len(completed) > 0 {
				t.Fatal("a partial image after the completed event")
			}
			partials = append(partials, ev)
		case openai.ImageGenCompletedEvent:
			completed = append(completed, ev)
		default:
			t.Fatalf("unknown event %q", stream.Current().RawJSON())
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if len(completed) != 1 || len(partials) == 0 || len(partials) > 2 {
		t.Fatalf("%d partial images, %d completed", len(partials), len(completed))
	}
	for i, p := range partials {
		if p.PartialImageIndex != int64(i) || p.Size != "64x64" || p.OutputFormat != "png" {
			t.Errorf("partial %d: index %d size %q format %q", i, p.PartialImageIndex, p.Size, p.OutputFormat)
		}
		img := decodeB64PNG(t, "partial image", p.B64JSON)
		if b := img.Bounds(); b.Dx() < 1 || b.Dx() > 256 || b.Dy() > 256 {
			t.Errorf("partial %d is %v", i, b)
		}
	}
	final := completed[0]
	if b := decodeB64PNG(t, "the image", final.B64JSON).Bounds(); b.Dx() != 64 || b.Dy() != 64 || final.Size != "64x64" || !final.JSON.Usage.Valid() {
		t.Fatalf("completed: %v, size %q, usage %s", b, final.Size, final.Usage.RawJSON())
	}

	// The same request without stream gives the same image (same seed): the stream's
	// previews change nothing in it.
	plain, err := client.Images.Generate(ctx, openai.ImageGenerateParams{Prompt: "a small house", Size: openai.ImageGenerateParamsSize("64x64")},
		option.WithJSONSet("steps", 6), option.WithJSONSet("seed", 42))
	if err != nil {
		t.Fatal(err)
	}
	if len(plain.Data) != 1 || !samePixels(decodeB64PNG(t, "plain", plain.Data[0].B64JSON), decodeB64PNG(t, "streamed", final.B64JSON)) {
		t.Fatal("the streamed image differs from the one made without previews")
	}

	// An edit through the SDK's multipart call: n images as one batch, of the upload's size.
	src := goimage.NewRGBA(goimage.Rect(0, 0, 64, 64))
	for y := range 64 {
		for x := range 64 {
			src.Set(x, y, color.RGBA{R: uint8(x * 4), G: uint8(y * 4), B: 128, A: 255})
		}
	}
	var upload bytes.Buffer
	if err := png.Encode(&upload, src); err != nil {
		t.Fatal(err)
	}
	edit := openai.ImageEditParams{
		Image: openai.ImageEditParamsImageUnion{OfFile: bytes.NewReader(upload.Bytes())}, Prompt: "a red house", N: openai.Int(2),
		ResponseFormat: openai.ImageEditParamsResponseFormatB64JSON,
	}
	edit.SetExtraFields(map[string]any{"steps": 4, "strength": 0.5, "seed": 7})
	edited, err := client.Images.Edit(ctx, edit)
	if err != nil {
		t.Fatal(err)
	}
	if len(edited.Data) != 2 {
		t.Fatalf("%d edited images", len(edited.Data))
	}
	for _, d := range edited.Data {
		if b := decodeB64PNG(t, "edited", d.B64JSON).Bounds(); b.Dx() != 64 || b.Dy() != 64 {
			t.Fatalf("edited image %v", b)
		}
	}

	// Refusals: 400 with the reason, before anything is queued.
	jobsBefore := jobCount(t, s)
	bad := client.Images.GenerateStreaming(ctx, openai.ImageGenerateParams{Prompt: "x", PartialImages: openai.Int(7)})
	for bad.Next() {
		t.Fatal("an event for partial_images 7")
	}
	var apiErr *openai.Error
	if err := bad.Err(); !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadRequest {
		t.Fatalf("partial_images 7: %v", err)
	}
	notPNG := openai.ImageEditParams{Image: openai.ImageEditParamsImageUnion{OfFile: bytes.NewReader([]byte("not an image at all"))}, Prompt: "x"}
	if _, err := client.Images.Edit(ctx, notPNG); !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadRequest {
		t.Fatalf("a non-image upload: %v", err)
	}
	if n := jobCount(t, s); n != jobsBefore {
		t.Fatalf("refused requests queued %d jobs", n-jobsBefore)
	}
}

// jobCount is how many jobs the orchestrator holds.
func jobCount(t *testing.T, s *stack) int {
	t.Helper()
	list, err := s.orch.ListJobs(context.Background(), &orchestratorv1.ListJobsRequest{PageSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	return len(list.GetJobs())
}

// samePixels reports whether a and b have the same size and RGBA pixels.
func samePixels(a, b goimage.Image) bool {
	if a.Bounds() != b.Bounds() {
		return false
	}
	for y := a.Bounds().Min.Y; y < a.Bounds().Max.Y; y++ {
		for x := a.Bounds().Min.X; x < a.Bounds().Max.X; x++ {
			r1, g1, b1, a1 := a.At(x, y).RGBA()
			r2, g2, b2, a2 := b.At(x, y).RGBA()
			if r1 != r2 || g1 != g2 || b1 != b2 || a1 != a2 {
				return false
			}
		}
	}
	return true
}

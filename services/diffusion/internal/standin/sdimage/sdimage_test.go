package sdimage

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

func captured(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "sdcpp", rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func params(t *testing.T, pngBytes []byte) string {
	t.Helper()
	chunks, err := TextChunks(pngBytes)
	if err != nil {
		t.Fatal(err)
	}
	p, ok := chunks["parameters"]
	if !ok {
		t.Fatal("no parameters chunk")
	}
	return p
}

// The parameters text equals the real sd-cli's byte for byte for the captured runs.
func TestMetaTextMatchesCLICaptures(t *testing.T) {
	for _, c := range []struct {
		file         string
		steps, width int
	}{{"cli/gen64.png", 2, 64}, {"cli/gen128.png", 20, 128}} {
		m := Meta{Prompt: "a red fox", Steps: c.steps, CFG: 7, Seed: 42, Width: c.width, Height: c.width,
			Models: []ModelRef{{"model", "tinysd.gguf"}}, Sampler: "euler_a", Scheduler: "discrete"}
		if got, want := m.Text(), params(t, captured(t, c.file)); got != want {
			t.Errorf("%s:\n got %q\nwant %q", c.file, got, want)
		}
	}
}

// sd-server leaves the sampler to the model: `Sampler: NONE` and no method/scheduler keys.
func TestMetaTextMatchesServerCapture(t *testing.T) {
	var job struct {
		Result struct {
			Images []struct {
				B64 string `json:"b64_json"`
			} `json:"images"`
		} `json:"result"`
	}
	if err := json.Unmarshal(captured(t, "server/17-job-small-completed.json"), &job); err != nil {
		t.Fatal(err)
	}
	data, err := base64.StdEncoding.DecodeString(job.Result.Images[0].B64)
	if err != nil {
		t.Fatal(err)
	}
	m := Meta{Prompt: "a red fox", Steps: 2, CFG: 7, Seed: 42, Width: 64, Height: 64, Models: []ModelRef{{"model", "tinysd.gguf"}}}
	if got, want := m.Text(), params(t, data); got != want {
		t.Errorf("\n got %q\nwant %q", got, want)
	}
}

func TestRenderDeterministicAndEncoded(t *testing.T) {
	a, b := Render(42, "a red fox", 64, 64), Render(42, "a red fox", 64, 64)
	if !bytes.Equal(a.Pix, b.Pix) {
		t.Fatal("same seed and prompt gave different pixels")
	}
	if bytes.Equal(a.Pix, Render(43, "a red fox", 64, 64).Pix) {
		t.Fatal("another seed gave the same pixels")
	}
	if bytes.Equal(a.Pix, Render(42, "a blue fox", 64, 64).Pix) {
		t.Fatal("another prompt gave the same pixels")
	}
	data, err := EncodePNG(Render(7, "x", 128, 64), "hello\nworld")
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if s := img.Bounds().Size(); s.X != 128 || s.Y != 64 {
		t.Fatalf("size %v", s)
	}
	if data[25] != 2 { // IHDR colour type: truecolour (RGB), as sd.cpp writes
		t.Fatalf("colour type %d, want 2", data[25])
	}
	if p := params(t, data); p != "hello\nworld" {
		t.Fatalf("parameters %q", p)
	}
}

func TestJSONFloat(t *testing.T) {
	for in, want := range map[float32]string{7: "7.0", 0.9: "0.8999999761581421", 0.2: "0.20000000298023224", 4.5: "4.5", 0: "0.0", 0.00001: "9.999999747378752e-06"} {
		if got := jsonFloat(in); got != want {
			t.Errorf("jsonFloat(%v) = %s, want %s", in, got, want)
		}
	}
}

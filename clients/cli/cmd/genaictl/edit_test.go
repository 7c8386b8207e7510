package main_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Issue 18: `generate --preview` writes each preview the engine sends (PNG files named
// after the output, with their step), `-n 2` a batch of two files with consecutive seeds,
// and `edit IMAGE PROMPT` (with --mask) makes an image of the upload's size; bad uploads
// fail with the server's reason.
func TestGeneratePreviewBatchAndEdit(t *testing.T) {
	if sd == nil {
		t.Skip("previews and edits are the real stable-diffusion.cpp's (the stand-in has neither)")
	}
	startDiffusion(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "fox.png")
	r := ok(t, "generate", "a red fox", "--width", "64", "--height", "64", "--steps", "3", "--seed", "11", "--preview", "-o", out)
	previews, _ := filepath.Glob(filepath.Join(dir, "fox.step-*.png"))
	if len(previews) == 0 || !strings.Contains(r.stdout, "Preview of step ") {
		t.Fatalf("no previews written:\n%s", r)
	}
	for _, p := range previews {
		if w, h := decodePNG(t, p); w < 1 || w > 256 || h < 1 || h > 256 {
			t.Errorf("preview %s is %dx%d", p, w, h)
		}
	}
	if w, h := decodePNG(t, out); w != 64 || h != 64 {
		t.Fatalf("image %dx%d", w, h)
	}

	batch := filepath.Join(dir, "batch.png")
	r = ok(t, "generate", "a blue fox", "--width", "64", "--height", "64", "--steps", "2", "--seed", "20", "-n", "2", "-o", batch)
	for _, re := range []string{`Saved .*batch\.png: 64x64, seed 20`, `Saved .*batch-1\.png: 64x64, seed 21\.`} {
		if !regexp.MustCompile(re).MatchString(r.stdout) {
			t.Errorf("batch output lacks %s:\n%s", re, r.stdout)
		}
	}
	decodePNG(t, filepath.Join(dir, "batch-1.png"))

	edited := filepath.Join(dir, "edited.png")
	ok(t, "edit", out, "a fox in the snow", "--steps", "2", "--strength", "0.5", "--mask", out, "-o", edited)
	if w, h := decodePNG(t, edited); w != 64 || h != 64 {
		t.Fatalf("edited image %dx%d", w, h)
	}
	junk := filepath.Join(dir, "junk.png")
	if err := os.WriteFile(junk, []byte("not an image"), 0o644); err != nil {
		t.Fatal(err)
	}
	fails(t, 1, "image", "edit", junk, "x", "--steps", "2")
	fails(t, 1, "mask", "edit", out, "x", "--steps", "2", "--mask", batch+".missing")
	fails(t, 1, "preview-method", "generate", "x", "--preview-method", "nope")
}

package pngcheck

import (
	"errors"
	"os"
	"testing"

	"github.com/genailab/genailab/services/diffusion/internal/enginerr"
)

func TestCheck(t *testing.T) {
	// gen64.png and gen128.png are the exact images the real sd-cli wrote (reference captures).
	gen64, err := os.ReadFile("testdata/gen64.png")
	if err != nil {
		t.Fatal(err)
	}
	gen128, err := os.ReadFile("testdata/gen128.png")
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(gen64, 64, 64); err != nil {
		t.Errorf("gen64: %v", err)
	}
	if err := Check(gen128, 128, 128); err != nil {
		t.Errorf("gen128: %v", err)
	}
	for name, c := range map[string]struct {
		data []byte
		w, h int
	}{
		"wrong size": {gen128, 64, 64},
		"truncated":  {gen64[:len(gen64)/2], 64, 64},
		"empty":      {nil, 64, 64},
		"not png":    {[]byte("GIF89a...."), 64, 64},
	} {
		if err := Check(c.data, c.w, c.h); !errors.Is(err, enginerr.ErrBadImage) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

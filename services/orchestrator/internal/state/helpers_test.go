package state_test

import diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"

func resultWithPNG() *diffusionv1.ImageResult {
	return &diffusionv1.ImageResult{Png: []byte("\x89PNG"), Width: 64, Height: 64}
}

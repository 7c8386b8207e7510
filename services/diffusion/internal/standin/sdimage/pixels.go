// Package sdimage makes the stand-ins' images: deterministic noise derived from the seed and
// the prompt, encoded as PNG with the `parameters` tEXt chunk that sd.cpp writes, or as JPEG. It
// is part of the STAND-INS for stable-diffusion.cpp (see package standin), not the real engine.
package sdimage

import (
	"hash/fnv"
	"image"
	"math/rand/v2"
)

// Render returns a w x h opaque image whose pixels depend only on seed, prompt and size: a
// coarse grid of random colours, smoothly interpolated, plus fine noise. The same seed and
// prompt always give the same pixels, whatever else the request says.
func Render(seed int64, prompt string, w, h int) *image.RGBA {
	hs := fnv.New64a()
	_, _ = hs.Write([]byte(prompt))
	rng := rand.New(rand.NewPCG(uint64(seed), hs.Sum64()))

	const cell = 16
	gw, gh := w/cell+2, h/cell+2
	grid := make([][3]float64, gw*gh)
	for i := range grid {
		grid[i] = [3]float64{rng.Float64() * 255, rng.Float64() * 255, rng.Float64() * 255}
	}
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		gy, fy := y/cell, float64(y%cell)/cell
		row := img.Pix[y*img.Stride:]
		for x := 0; x < w; x++ {
			gx, fx := x/cell, float64(x%cell)/cell
			a, b := &grid[gy*gw+gx], &grid[gy*gw+gx+1]
			c, d := &grid[(gy+1)*gw+gx], &grid[(gy+1)*gw+gx+1]
			noise := rng.Uint64()
			for k := 0; k < 3; k++ {
				v := (a[k]*(1-fx)+b[k]*fx)*(1-fy) + (c[k]*(1-fx)+d[k]*fx)*fy
				v += float64(int(noise>>(16*k)&0xffff)%49 - 24)
				row[4*x+k] = uint8(min(255, max(0, v)))
			}
			row[4*x+3] = 255
		}
	}
	return img
}

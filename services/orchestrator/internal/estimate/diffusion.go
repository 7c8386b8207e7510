package estimate

// Diffusion parameters: what an image needs from the diffusion engine.
type DiffusionParams struct {
	// ComponentBytes is the sum of the model's file sizes (all components).
	ComponentBytes uint64
	// Width and Height of the image in pixels.
	Width, Height int
	// WeightsFactor scales the component sizes to their resident size (buffers,
	// dequantised parts); 0 means DefaultWeightsFactor.
	WeightsFactor float64
	// BytesPerPixel is the activation memory per output pixel (latents, attention, VAE
	// decode); 0 means DefaultBytesPerPixel.
	BytesPerPixel float64
	// CorrectionBytes is learnt from past runs (measured peak minus estimate); added.
	CorrectionBytes int64
}

// Defaults for the diffusion estimate: sd.cpp keeps every component resident plus ~20 %,
// and an SD 1.5 / SDXL class model needs on the order of 1 GiB of compute buffers per
// megapixel (mostly the VAE decode); measured peaks correct both.
const (
	DefaultWeightsFactor = 1.2
	DefaultBytesPerPixel = 1024
)

// Diffusion is an estimate of what one image needs.
type Diffusion struct {
	// WeightsBytes is component sizes × factor.
	WeightsBytes uint64
	// ActivationBytes is the width × height term.
	ActivationBytes uint64
	// CorrectionBytes is the learnt correction that was applied.
	CorrectionBytes int64
	// TotalBytes is the sum, never below the weights.
	TotalBytes uint64
}

// EstimateDiffusion computes the memory one image needs.
func EstimateDiffusion(p DiffusionParams) Diffusion {
	f := p.WeightsFactor
	if f <= 0 {
		f = DefaultWeightsFactor
	}
	bpp := p.BytesPerPixel
	if bpp <= 0 {
		bpp = DefaultBytesPerPixel
	}
	w, h := p.Width, p.Height
	if w <= 0 {
		w = 512
	}
	if h <= 0 {
		h = 512
	}
	d := Diffusion{
		WeightsBytes:    uint64(float64(p.ComponentBytes) * f),
		ActivationBytes: uint64(float64(w) * float64(h) * bpp),
		CorrectionBytes: p.CorrectionBytes,
	}
	total := int64(d.WeightsBytes+d.ActivationBytes) + p.CorrectionBytes
	if total < int64(d.WeightsBytes) {
		total = int64(d.WeightsBytes)
	}
	d.TotalBytes = uint64(total)
	return d
}

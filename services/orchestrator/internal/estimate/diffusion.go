package estimate

// EngineMode is how the diffusion service runs stable-diffusion.cpp.
type EngineMode int

const (
	// ModeCLI is one sd-cli process per image (the default).
	ModeCLI EngineMode = iota
	// ModeServer is one persistent sd-server that keeps the model loaded between jobs.
	ModeServer
)

func (m EngineMode) String() string {
	if m == ModeServer {
		return "server"
	}
	return "cli"
}

// Diffusion parameters: what an image needs from the diffusion engine.
type DiffusionParams struct {
	// ComponentBytes is the sum of the model's file sizes (all components).
	ComponentBytes uint64
	// Width and Height of the image in pixels.
	Width, Height int
	// Mode is the engine mode: the process's fixed overhead differs.
	Mode EngineMode
	// WeightsFactor scales the component sizes to their resident size; 0 means
	// DefaultWeightsFactor.
	WeightsFactor float64
	// BytesPerPixel is the compute memory per output pixel (latents, UNet and VAE
	// decode buffers); 0 means DefaultBytesPerPixel.
	BytesPerPixel float64
	// CorrectionBytes is learnt from past runs (measured peak minus estimate); added.
	CorrectionBytes int64
	// Images is the batch size (0 or 1: one image); each further image adds
	// BatchBytesPerPixel (sd.cpp samples and decodes them one after the other, reusing its
	// compute buffers, and keeps every latent and decoded image until the end).
	Images int
	// Edit (img2img) adds EditBytesPerPixel: the VAE encode of the init image.
	Edit bool
	// DecodedPreviews (tae or vae previews, full size at every step) add
	// PreviewBytesPerPixel; proj previews are latent-sized and free.
	DecodedPreviews bool
}

// The per-pixel terms of issue 18's features, from the peak RSS of the real sd-cli
// (master-827, CPU, tiny model): -b 4 at 512² +8.6 MiB over -b 1 (11 B/px per further
// image; 19 at 256²), img2img at 512² +4.2 MiB (17 B/px), --preview vae at 512² +38 MiB
// (151 B/px). Rounded up.
const (
	BatchBytesPerPixel   = 24
	EditBytesPerPixel    = 24
	PreviewBytesPerPixel = 160
)

// Defaults for the diffusion estimate, fitted to the peak RSS of the real
// stable-diffusion.cpp (master-827-97d2990, CPU) at 64² to 512² in both modes with three
// model variants (MEMORY.md; testdata/sdmem.json; cmd/sdmem-bench measures them):
//
//	peak RSS = file size × 1.0 + overhead (sd-cli 39 MiB, sd-server 50 MiB) + 1 922–1 938 B per pixel
//
// sd.cpp loads every tensor as stored (its "total params memory size" equals the file's
// tensor data), the overhead is the program, its ggml contexts and (sd-server) the HTTP
// server and the PNG/base64 of the answer, and the per-pixel term is the compute buffers,
// the largest being the VAE decode. The models measured decode with TAESD; a full VAE
// needs more per pixel, which the learnt correction adds after the first images.
const (
	DefaultWeightsFactor       = 1.0
	DefaultBytesPerPixel       = 1936
	DefaultCLIOverheadBytes    = 40 << 20
	DefaultServerOverheadBytes = 50 << 20
)

// Diffusion is an estimate of what one image needs: the engine process's peak resident
// memory while it makes the image (sd-cli's, or sd-server's including the model it keeps).
type Diffusion struct {
	// WeightsBytes is component sizes × factor.
	WeightsBytes uint64
	// OverheadBytes is the engine process's fixed part (program, contexts, HTTP server).
	OverheadBytes uint64
	// ActivationBytes is the width × height term.
	ActivationBytes uint64
	// CorrectionBytes is the learnt correction that was applied.
	CorrectionBytes int64
	// TotalBytes is the sum, never below the weights.
	TotalBytes uint64
}

// ResidentBytes is what the engine keeps between images in server mode once it has
// generated one (sd-server loads the weights on its first job): weights and overhead.
func (d Diffusion) ResidentBytes() uint64 { return d.WeightsBytes + d.OverheadBytes }

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
	// sd.cpp rounds the size up to a multiple of 64 ("align generation request up").
	w, h = (w+63)/64*64, (h+63)/64*64
	overhead := uint64(DefaultCLIOverheadBytes)
	if p.Mode == ModeServer {
		overhead = DefaultServerOverheadBytes
	}
	d := Diffusion{
		WeightsBytes:    uint64(float64(p.ComponentBytes) * f),
		OverheadBytes:   overhead,
		ActivationBytes: uint64(float64(w) * float64(h) * (bpp + featureBytesPerPixel(p))),
		CorrectionBytes: p.CorrectionBytes,
	}
	total := int64(d.WeightsBytes+d.OverheadBytes+d.ActivationBytes) + p.CorrectionBytes
	if total < int64(d.WeightsBytes) {
		total = int64(d.WeightsBytes)
	}
	d.TotalBytes = uint64(total)
	return d
}

// featureBytesPerPixel is what a batch, an edit and decoded previews add per pixel.
func featureBytesPerPixel(p DiffusionParams) float64 {
	var b float64
	if p.Images > 1 {
		b += float64(p.Images-1) * BatchBytesPerPixel
	}
	if p.Edit {
		b += EditBytesPerPixel
	}
	if p.DecodedPreviews {
		b += PreviewBytesPerPixel
	}
	return b
}

package sdgen

import (
	"context"
	"fmt"
	"image"
	"strings"
	"syscall"
	"time"

	"github.com/genailab/genailab/services/diffusion/internal/standin/sdbar"
	"github.com/genailab/genailab/services/diffusion/internal/standin/sdimage"
	"github.com/genailab/genailab/services/diffusion/internal/standin/sdlog"
)

// Params is one generate_image call.
type Params struct {
	Prompt, Negative string
	Width, Height    int // as requested; not multiples of 64 are aligned up with a WARN
	Steps            int
	CFG              float32
	Seed             int64
	Batch            int
	Sampler          string // "" for the model default
	Scheduler        string // "" for the default (discrete)
}

// Result is what generate_image returns.
type Result struct {
	Width, Height int           // after alignment
	Images        []*image.RGBA // one per batch entry; nil where no data came back
	Seeds         []int64
}

// Align rounds a size up to a multiple of 64, as sd.cpp does for SD1-class models.
func Align(n int) int { return (n + 63) / 64 * 64 }

var (
	siteAlign      = sdlog.Site{File: "stable-diffusion.cpp", Line: 4154}
	siteUncond     = sdlog.Site{File: "stable-diffusion.cpp", Line: 4260}
	siteSampling   = sdlog.Site{File: "stable-diffusion.cpp", Line: 4380}
	siteCondDone   = sdlog.Site{File: "stable-diffusion.cpp", Line: 5296}
	siteDecoding   = sdlog.Site{File: "stable-diffusion.cpp", Line: 5321}
	siteDecoded    = sdlog.Site{File: "stable-diffusion.cpp", Line: 5387}
	siteDecodeDone = sdlog.Site{File: "stable-diffusion.cpp", Line: 5391}
	siteGenerate   = sdlog.Site{File: "stable-diffusion.cpp", Line: 5628}
	siteGenerating = sdlog.Site{File: "stable-diffusion.cpp", Line: 5679}
	siteSampled    = sdlog.Site{File: "stable-diffusion.cpp", Line: 5711}
	siteLatents    = sdlog.Site{File: "stable-diffusion.cpp", Line: 5723}
	siteCompleted  = sdlog.Site{File: "stable-diffusion.cpp", Line: 5861}
	siteSigmas     = sdlog.Site{File: "denoiser.hpp", Line: 1051}
)

// Generate runs one generate_image call: stage lines, `#` weight-loading bars the first time a
// module is used, one `=` bar line per image, decoding, and the rendered images. Errors are
// ErrFailed, a *CrashError, or the context's error (only a hang waits for it).
func (e *Engine) Generate(ctx context.Context, p Params) (Result, error) {
	e.generations++
	fault := e.Config.Fault
	if fault.Job != 0 && fault.Job != e.generations {
		fault = Fault{}
	}
	start := time.Now()
	w, h := Align(max(p.Width, 1)), Align(max(p.Height, 1))
	if w != p.Width || h != p.Height {
		e.Log.Warnf(siteAlign, "align generation request up %dx%d to %dx%d (multiple=64)", p.Width, p.Height, w, h)
	}
	if p.CFG == 0 {
		e.Log.Warnf(siteUncond, "unconditioned mode, images won't follow the prompt (use cfg-scale=1 for distilled models)")
	}
	sampler := p.Sampler
	if sampler == "" {
		sampler = e.Profile.DefaultMethod
	}
	scheduler := p.Scheduler
	if scheduler == "" {
		scheduler = "discrete"
	}
	batch := max(p.Batch, 1)
	e.Log.Infof(siteGenerate, "generate_image %dx%d", w, h)
	e.Log.Infof(siteSigmas, "get_sigmas with %s scheduler", scheduler)
	e.Log.Infof(siteSampling, "sampling using %s method", samplerTitle[sampler])

	// Text encoder: the prompt, then the negative prompt.
	condStart := time.Now()
	e.debugPrompt(p.Prompt)
	if e.truncated != "" {
		return Result{}, e.abortTruncated(ctx)
	}
	if !e.loadedTE {
		if err := e.loadModule(ctx, e.Profile.TextEncoder); err != nil {
			return Result{}, err
		}
		e.loadedTE = true
	}
	for i, text := range []string{p.Prompt, p.Negative} {
		if i == 1 {
			e.debugPrompt(text)
		}
		graphStart := time.Now()
		e.Log.Debugf(sdlog.Site{File: "ggml_extend.hpp", Line: 2241}, "clip compute buffer size: 1.42 MB(RAM)")
		if err := e.sleep(ctx, e.Config.Timing.Condition()/2); err != nil {
			return Result{}, err
		}
		e.Log.Debugf(sdlog.Site{File: "conditioner.hpp", Line: 497}, "computing condition graph completed, taking %d ms", time.Since(graphStart).Milliseconds())
	}
	e.Log.Infof(siteCondDone, "get_learned_condition completed, taking %.2fs", time.Since(condStart).Seconds())

	// Sampling, one latent per batch entry.
	failStep := fault.Step
	if failStep == 0 || failStep > p.Steps {
		failStep = (p.Steps + 1) / 2
	}
	var sampled time.Duration
	seeds := make([]int64, batch)
	for i := range batch {
		seeds[i] = p.Seed + int64(i)
		e.Log.Infof(siteGenerating, "generating image: %d/%d - seed %d", i+1, batch, seeds[i])
		if !e.loadedUNet {
			if err := e.loadModule(ctx, e.Profile.Diffusion); err != nil {
				return Result{}, err
			}
			e.loadedUNet = true
			e.Log.Debugf(sdlog.Site{File: "ggml_extend.hpp", Line: 2241}, "unet compute buffer size: 0.58 MB(RAM)")
		}
		sampleStart := time.Now()
		for step := 1; step <= p.Steps; step++ {
			stepStart := time.Now()
			if err := e.sleep(ctx, e.Config.Timing.StepTime(w, h, !e.warm)); err != nil {
				return Result{}, err
			}
			e.warm = true
			if !fault.Decode && i == 0 && step == failStep {
				if err := e.fail(ctx, fault.Mode, "unet", w, h, step); err != nil {
					return Result{}, err
				}
			}
			e.Log.Raw(sdbar.Render(sdbar.Sampling, step, p.Steps, sdbar.StepSpeed(time.Since(stepStart))))
		}
		took := time.Since(sampleStart)
		sampled += took
		e.Log.Infof(siteSampled, "sampling completed, taking %.2fs", took.Seconds())
	}
	e.Log.Infof(siteLatents, "generating %d latent images completed, taking %.2fs", batch, sampled.Seconds())

	// Decoding.
	e.Log.Infof(siteDecoding, "decoding %d latents", batch)
	decodeStart := time.Now()
	res := Result{Width: w, Height: h, Seeds: seeds, Images: make([]*image.RGBA, batch)}
	for i := range batch {
		latentStart := time.Now()
		if !e.loadedVAE {
			if err := e.loadModule(ctx, e.Profile.VAE); err != nil {
				return Result{}, err
			}
			e.loadedVAE = true
			e.Log.Debugf(sdlog.Site{File: "ggml_extend.hpp", Line: 2241}, "taesd compute buffer size: 7.50 MB(RAM)")
		}
		if err := e.sleep(ctx, e.Config.Timing.Decode(w, h)); err != nil {
			return Result{}, err
		}
		if fault.Decode && i == 0 {
			if err := e.fail(ctx, fault.Mode, "taesd", w, h, 0); err != nil {
				return Result{}, err
			}
		}
		if fault.Mode != FaultNoOutput {
			res.Images[i] = sdimage.Render(seeds[i], p.Prompt, w, h)
		}
		e.Log.Debugf(sdlog.Site{File: "vae.hpp", Line: 220}, "computing vae decode graph completed, taking %.2fs", time.Since(latentStart).Seconds())
		e.Log.Infof(siteDecoded, "latent %d decoded, taking %.2fs", i+1, time.Since(latentStart).Seconds())
	}
	e.Log.Infof(siteDecodeDone, "decode_first_stage completed, taking %.2fs", time.Since(decodeStart).Seconds())
	e.Log.Infof(siteCompleted, "generate_image completed in %.2fs", time.Since(start).Seconds())
	return res, nil
}

// debugPrompt prints the verbose tokenizer lines for one prompt.
func (e *Engine) debugPrompt(text string) {
	if !e.Log.Verbose {
		return
	}
	e.Log.Debugf(sdlog.Site{File: "conditioner.hpp", Line: 371}, "parse '%s' to [['%s', 1], ]", text, text)
	words := strings.Fields(strings.ToLower(text))
	toks := make([]string, len(words))
	for i, w := range words {
		toks[i] = fmt.Sprintf("%q, ", w+"</w>")
	}
	e.Log.Debugf(sdlog.Site{File: "bpe_tokenizer.cpp", Line: 208}, "split prompt \"%s\" to %d tokens [%s]", text, len(words), strings.Join(toks, ""))
}

// fail injects a failure in module ("unet" while sampling, "taesd" while decoding).
func (e *Engine) fail(ctx context.Context, mode FaultMode, module string, w, h, step int) error {
	switch mode {
	case FaultSegv:
		return &CrashError{Signal: syscall.SIGSEGV}
	case FaultHang:
		// Sleep rather than block on a channel: a process with nothing but a blocked main
		// goroutine would be killed by Go's deadlock detector.
		for {
			if err := e.sleep(ctx, time.Hour); err != nil {
				return err
			}
		}
	case FaultError:
		e.Log.Errorf(sdlog.Site{File: "ggml_extend.hpp", Line: 2117}, "%s compute failed", module)
	case FaultOOM, FaultOOMCUDA:
		size := int64(w) * int64(h) * 26000 // a compute buffer that grows with the image
		if mode == FaultOOM {
			e.Log.Errorf(sdlog.Site{File: "ggml_extend.hpp", Line: 75}, "ggml_backend_cpu_buffer_type_alloc_buffer: failed to allocate buffer of size %d", size)
		} else {
			e.Log.Errorf(sdlog.Site{File: "ggml_extend.hpp", Line: 75}, "ggml_backend_cuda_buffer_type_alloc_buffer: allocating %.2f MiB on device 0: cudaMalloc failed: out of memory", float64(size)/(1024*1024))
		}
		e.Log.Errorf(sdlog.Site{File: "ggml_extend.hpp", Line: 2199}, "%s: failed to allocate the compute buffer", module)
	default:
		return nil
	}
	if module == "taesd" {
		e.Log.Errorf(sdlog.Site{File: "stable-diffusion.cpp", Line: 5383}, "decode_first_stage failed for latent 1")
	} else {
		e.Log.Errorf(sdlog.Site{File: "stable-diffusion.cpp", Line: 3312}, "sampling failed at step %d", step)
	}
	return ErrFailed
}

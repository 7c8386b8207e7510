package sdgen

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/genailab/genailab/services/diffusion/internal/standin/sdbar"
	"github.com/genailab/genailab/services/diffusion/internal/standin/sdlog"
	"github.com/genailab/genailab/services/diffusion/internal/standin/sdmodel"
)

// ErrNoModel means a model file was missing or not a model; the lines sd.cpp prints were
// printed, the caller adds its own `new_sd_ctx_t failed`.
var ErrNoModel = errors.New("new_sd_ctx_t failed")

// ErrFailed means the generation failed and its ERROR lines were printed.
var ErrFailed = errors.New("generation failed")

// CrashError means the process must now die by Signal (sdsignal.Die): everything the real
// program prints before dying has been printed.
type CrashError struct{ Signal syscall.Signal }

func (e *CrashError) Error() string { return fmt.Sprintf("crash by signal %d", int(e.Signal)) }

// Component is one model file given on the command line, in sd.cpp's flag order.
type Component struct {
	Key  string // model, clip_l, clip_g, t5xxl, llm, diffusion_model, vae
	Path string // as given
}

// Engine is one loaded "model": the state a real sd_ctx_t keeps between generations (which
// modules' weights are loaded, whether the graph has warmed up).
type Engine struct {
	Log        *sdlog.Logger
	Config     Config
	Components []Component
	Profile    sdmodel.Profile

	truncated     string // path of a truncated component
	loadedTE      bool
	loadedUNet    bool
	loadedVAE     bool
	warm          bool
	generations   int
	primary       string // path printed in `loading N/610 tensors from %s`
	sleepOverride func(context.Context, time.Duration) error
}

var (
	siteInitFailed    = sdlog.Site{File: "stable-diffusion.cpp", Line: 715}
	siteVersionFailed = sdlog.Site{File: "stable-diffusion.cpp", Line: 905}
	siteVersion       = sdlog.Site{File: "stable-diffusion.cpp", Line: 908}
	siteUnknownFormat = sdlog.Site{File: "model_loader.cpp", Line: 252}
	siteNotFound      = sdlog.Site{File: "model_loader.cpp", Line: 254}
	siteLoadUsing     = sdlog.Site{File: "model_loader.cpp", Line: 236}
	siteThreads       = sdlog.Site{File: "model_loader.cpp", Line: 228}
	siteInitFrom      = sdlog.Site{File: "model_loader.cpp", Line: 288}
	siteTAE           = sdlog.Site{File: "stable-diffusion.cpp", Line: 1502}
	siteMemory        = sdlog.Site{File: "stable-diffusion.cpp", Line: 1745}
	sitePrediction    = sdlog.Site{File: "stable-diffusion.cpp", Line: 1849}
)

// componentLine is the site and wording of `loading X from '%s'` per component. Only the full
// model's line is in the captures.
var componentLine = map[string]struct {
	line int
	what string
}{
	"model": {713, "model"}, "clip_l": {721, "clip_l"}, "clip_g": {729, "clip_g"}, "t5xxl": {737, "t5xxl"},
	"llm": {745, "llm"}, "diffusion_model": {761, "diffusion model"}, "vae": {777, "vae"},
}

func (e *Engine) sleep(ctx context.Context, d time.Duration) error {
	if e.sleepOverride != nil {
		return e.sleepOverride(ctx, d)
	}
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// LoadHeader does what new_sd_ctx does: it reads each model file's header and prints the
// model description, from `loading model from` to `running in eps-prediction mode`. A missing
// or unreadable file gives ErrNoModel after the captured WARN and ERROR lines.
func (e *Engine) LoadHeader(ctx context.Context) error {
	e.Log.Debugf(siteThreads, "using 2 threads for model loading")
	for i, c := range e.Components {
		cl := componentLine[c.Key]
		e.Log.Infof(sdlog.Site{File: "stable-diffusion.cpp", Line: cl.line}, "loading %s from '%s'", cl.what, c.Path)
		info := sdmodel.Inspect(c.Path)
		switch info.Kind {
		case sdmodel.NotFound, sdmodel.UnknownFormat:
			if info.Kind == sdmodel.NotFound {
				e.Log.Warnf(siteNotFound, "file %s not found", c.Path)
			} else {
				e.Log.Warnf(siteUnknownFormat, "unknown format %s", c.Path)
			}
			e.Log.Errorf(sdlog.Site{File: "stable-diffusion.cpp", Line: siteInitFailed.Line + 8*i}, "init model loader from file failed: '%s'", c.Path)
			e.Log.Errorf(siteVersionFailed, "get sd version from file failed: '%s'", c.Path)
			return ErrNoModel
		case sdmodel.Truncated:
			if e.truncated == "" {
				e.truncated = c.Path
			}
		}
		e.Log.Infof(siteLoadUsing, "load %s using %s format", c.Path, info.Format)
		e.Log.Debugf(siteInitFrom, "init from '%s'", c.Path)
		if e.primary == "" {
			e.primary = c.Path
		}
	}
	if err := e.sleep(ctx, e.Config.Timing.Header()); err != nil {
		return err
	}
	p := e.Profile
	e.Log.Infof(siteVersion, "Version: %s", p.Version)
	e.Log.Debugf(sdlog.Site{File: "ggml_extend_backend.cpp", Line: 545}, "Found 1 backend devices:")
	e.Log.Debugf(sdlog.Site{File: "ggml_extend_backend.cpp", Line: 548}, "#0: CPU")
	e.Log.Debugf(sdlog.Site{File: "ggml_extend_backend.cpp", Line: 395}, "Initializing backend: CPU")
	e.Log.Debugf(sdlog.Site{File: "ggml_extend_backend.cpp", Line: 590}, "Using CPU backend")
	for i, s := range p.TypeStats {
		e.Log.Infof(sdlog.Site{File: "stable-diffusion.cpp", Line: 959 + i}, "%s", s)
	}
	e.Log.Debugf(sdlog.Site{File: "stable-diffusion.cpp", Line: 964}, "ggml tensor size = 432 bytes")
	e.Log.Debugf(sdlog.Site{File: "clip_tokenizer.cpp", Line: 66}, "vocab size: 49408")
	e.Log.Debugf(sdlog.Site{File: "unet.hpp", Line: 131}, "unet: in_channels = 4, out_channels = 4, model_channels = 32, time_embed_dim = 128, context_dim = 768, adm_in_channels = 2816, num_res_blocks = 1, tiny_unet = true")
	e.Log.Infof(siteTAE, "using TAE for encoding / decoding")
	e.Log.Debugf(sdlog.Site{File: "stable-diffusion.cpp", Line: 1645}, "validating model metadata")
	e.Log.Debugf(sdlog.Site{File: "stable-diffusion.cpp", Line: 1704}, "model metadata validated; weights will be prepared lazily")
	e.Log.Infof(siteMemory, "%s", p.MemoryLine)
	e.Log.Infof(sitePrediction, "running in %s mode", p.Prediction)
	return nil
}

// loadModule loads one module's weights lazily, with its `#` bar.
func (e *Engine) loadModule(ctx context.Context, m sdmodel.Module) error {
	e.Log.Debugf(sdlog.Site{File: "model_loader.cpp", Line: 1042}, "loading %d/%d tensors from %s", m.Tensors, e.Profile.TotalTensors, e.primary)
	start := time.Now()
	total := e.Config.Timing.Load(m)
	if m.Name == e.Profile.Diffusion.Name {
		// The first tensor of the UNet shows up at once, as in most captures.
		e.Log.Raw(sdbar.Render(sdbar.Loading, 1, m.Tensors, sdbar.ByteSpeed(0, time.Millisecond)))
	}
	const tick = 100 * time.Millisecond
	for elapsed := time.Duration(0); total-elapsed > tick; {
		if err := e.sleep(ctx, tick); err != nil {
			return err
		}
		elapsed = time.Since(start)
		done := min(m.Tensors-1, max(1, int(float64(m.Tensors)*float64(elapsed)/float64(total))))
		e.Log.Raw(sdbar.Render(sdbar.Loading, done, m.Tensors, sdbar.ByteSpeed(m.Bytes*int64(done)/int64(m.Tensors), elapsed)))
	}
	if err := e.sleep(ctx, total-time.Since(start)); err != nil {
		return err
	}
	took := time.Since(start)
	e.Log.Raw(sdbar.Render(sdbar.Loading, m.Tensors, m.Tensors, sdbar.ByteSpeed(m.Bytes, took)))
	read := 0.0
	if m.Name == e.Profile.TextEncoder.Name {
		read = took.Seconds() * 0.65
	}
	e.Log.Infof(sdlog.Site{File: "model_loader.cpp", Line: 1304}, "loading tensors completed, taking %.2fs (read: %.2fs, memcpy: 0.00s, convert: 0.00s, copy_to_backend: 0.00s)", took.Seconds(), read)
	e.Log.Debugf(sdlog.Site{File: "model_manager.cpp", Line: 406}, "model manager prepared params backend buffer (%6.2f MB, %d tensors, RAM)", float64(m.Bytes)/(1024*1024), m.Tensors)
	return nil
}

// Release prints what free_sd_ctx prints in verbose mode (sd-cli, at exit).
func (e *Engine) Release() {
	for _, m := range []struct {
		loaded bool
		mod    sdmodel.Module
	}{{e.loadedTE, e.Profile.TextEncoder}, {e.loadedUNet, e.Profile.Diffusion}, {e.loadedVAE, e.Profile.VAE}} {
		if m.loaded {
			e.Log.Debugf(sdlog.Site{File: "model_manager.cpp", Line: 981}, "model manager releasing params backend buffer (%6.2f MB, %d tensors, RAM)", float64(m.mod.Bytes)/(1024*1024), m.mod.Tensors)
		}
	}
}

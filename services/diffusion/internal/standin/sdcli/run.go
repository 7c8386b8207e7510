package sdcli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"

	"github.com/genailab/genailab/services/diffusion/internal/standin/sdargs"
	"github.com/genailab/genailab/services/diffusion/internal/standin/sdflags"
	"github.com/genailab/genailab/services/diffusion/internal/standin/sdgen"
	"github.com/genailab/genailab/services/diffusion/internal/standin/sdimage"
	"github.com/genailab/genailab/services/diffusion/internal/standin/sdlog"
	"github.com/genailab/genailab/services/diffusion/internal/standin/sdmodel"
)

// Outcome is how the process must end.
type Outcome = sdflags.Outcome

var (
	siteMkdir          = sdlog.Site{File: "main.cpp", Line: 452}
	siteSaved          = sdlog.Site{File: "main.cpp", Line: 490}
	siteAllSaved       = sdlog.Site{File: "main.cpp", Line: 562}
	siteGenerateFailed = sdlog.Site{File: "main.cpp", Line: 542}
	siteNewCtxFailed   = sdlog.Site{File: "main.cpp", Line: 910}
	sitePromptFile     = sdlog.Site{File: "common.cpp", Line: 2301}
	siteMode           = sdlog.Site{File: "main.cpp", Line: 700}
)

var program = sdflags.Program{Name: "sd-cli", Table: table, Help: Help}

// Run is the whole sd-cli stand-in: argv as the process got it (argv[0] first).
func Run(ctx context.Context, argv []string, getenv func(string) string, stdout, stderr io.Writer) Outcome {
	st, end := program.Start(argv, getenv, stdout, stderr)
	if end != nil {
		return *end
	}
	if mode := st.Args.String("--mode", "img_gen"); mode != "img_gen" {
		st.Log.Errorf(siteMode, "error: the sd-cli stand-in only supports mode img_gen, not %s", mode)
		return Outcome{Code: 1}
	}
	if end := sdflags.Check(st.Args, st.Log, st.Help); end != nil {
		return *end
	}
	return generate(ctx, st.Args, st.Config, st.Log)
}

func generate(ctx context.Context, args *sdargs.Args, cfg sdgen.Config, log *sdlog.Logger) Outcome {
	steps := args.Int("--steps", 20)
	prompt := args.String("--prompt", "")
	if f := args.String("--prompt-file", ""); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			log.Errorf(sitePromptFile, "error: failed to read prompt file '%s'", f)
			return Outcome{Code: 1}
		}
		prompt = strings.TrimRight(string(b), "\r\n")
	}
	width, height := args.Int("--width", 512), args.Int("--height", 512)
	if width <= 0 {
		width = 512
	}
	if height <= 0 {
		height = 512
	}
	seed := args.Int64("--seed", 42)
	if seed < 0 {
		seed = rand.Int64N(1 << 31) // srand(time(NULL)); rand()
	}
	p := sdgen.Params{
		Prompt: prompt, Negative: args.String("--negative-prompt", ""),
		Width: width, Height: height, Steps: steps, CFG: args.Float("--cfg-scale", 7),
		Seed: seed, Batch: max(1, args.Int("--batch-count", 1)),
		Sampler: args.String("--sampling-method", ""),
	}
	if s := args.String("--scheduler", ""); s != "" {
		p.Scheduler, _ = sdgen.CanonicalScheduler(s)
	}
	out := args.String("--output", "./output.png")
	comps := sdflags.Components(args)
	if log.Verbose {
		printParams(log, args, p, comps, out)
	}

	eng := &sdgen.Engine{Log: log, Config: cfg, Components: comps, Profile: sdmodel.TinySD}
	if err := eng.LoadHeader(ctx); err != nil {
		if errors.Is(err, sdgen.ErrNoModel) {
			log.Infof(siteNewCtxFailed, "new_sd_ctx_t failed")
			return Outcome{Code: 1}
		}
		return Outcome{Code: 1}
	}
	res, err := eng.Generate(ctx, p)
	var crash *sdgen.CrashError
	switch {
	case err == nil:
	case errors.As(err, &crash):
		return Outcome{Signal: crash.Signal}
	case errors.Is(err, sdgen.ErrFailed):
		log.Errorf(siteGenerateFailed, "generate failed")
		return Outcome{Code: 1}
	default:
		return Outcome{Code: 1}
	}
	eng.Release()
	return save(log, args, p, res, comps, out)
}

var printfInt = regexp.MustCompile(`%0?[0-9]*d`)

// outputName is the file of image i: printf-style %d is replaced by the index, otherwise batch
// runs get `_i` before the extension.
func outputName(out string, i, batch int, beginIdx int) string {
	if printfInt.MatchString(out) {
		return printfInt.ReplaceAllStringFunc(out, func(verb string) string { return fmt.Sprintf(verb, i+beginIdx) })
	}
	if batch == 1 {
		return out
	}
	ext := filepath.Ext(out)
	return fmt.Sprintf("%s_%d%s", strings.TrimSuffix(out, ext), i, ext)
}

// cError is an OS error worded as C's strerror words it.
func cError(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		s := errno.Error()
		return strings.ToUpper(s[:1]) + s[1:]
	}
	return err.Error()
}

func save(log *sdlog.Logger, args *sdargs.Args, p sdgen.Params, res sdgen.Result, comps []sdgen.Component, out string) Outcome {
	if dir := filepath.Dir(out); dir != "." && dir != "" {
		if _, err := os.Stat(dir); err != nil {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				log.Errorf(siteMkdir, "failed to create directory '%s': %s", dir, cError(err))
				return Outcome{Code: 1}
			}
		}
	}
	models := make([]sdimage.ModelRef, len(comps))
	for i, c := range comps {
		models[i] = sdimage.ModelRef{Key: c.Key, Path: c.Path}
	}
	sampler, scheduler := p.Sampler, p.Scheduler
	if sampler == "" {
		sampler = sdmodel.TinySD.DefaultMethod
	}
	if scheduler == "" {
		scheduler = "discrete"
	}
	begin := args.Int("--output-begin-idx", 0)
	if !args.Has("--output-begin-idx") && !printfInt.MatchString(out) {
		begin = 0
	}
	saved := 0
	for i, img := range res.Images {
		if img == nil {
			continue
		}
		name := outputName(out, i, len(res.Images), begin)
		meta := ""
		if !args.Has("--disable-image-metadata") {
			meta = sdimage.Meta{Prompt: p.Prompt, Negative: p.Negative, Steps: p.Steps, CFG: p.CFG, Seed: res.Seeds[i],
				Width: p.Width, Height: p.Height, Models: models, Sampler: sampler, Scheduler: scheduler}.Text()
		}
		var data []byte
		var err error
		switch strings.ToLower(filepath.Ext(name)) {
		case ".jpg", ".jpeg":
			data, err = sdimage.EncodeJPEG(img, 90)
		default:
			data, err = sdimage.EncodePNG(img, meta)
		}
		if err == nil {
			err = os.WriteFile(name, data, 0o644)
		}
		status := "success"
		if err != nil {
			status = "failure"
		} else {
			saved++
		}
		log.Infof(siteSaved, "save result image %d to '%s' (%s)", i, name, status)
	}
	log.Infof(siteAllSaved, "%d/%d images saved", saved, len(res.Images))
	return Outcome{}
}

// Package sdflags is the command-line handling shared by the sd-cli and sd-server stand-ins:
// the callbacks of sd.cpp's manual options, the error messages and exit codes of a failed
// parse, and the checks common.cpp makes afterwards. It is part of the STAND-INS for
// stable-diffusion.cpp (see package standin), not the real engine.
package sdflags

import (
	"errors"
	"slices"
	"strings"
	"syscall"

	"github.com/genailab/genailab/services/diffusion/internal/standin/sdargs"
	"github.com/genailab/genailab/services/diffusion/internal/standin/sdgen"
	"github.com/genailab/genailab/services/diffusion/internal/standin/sdlog"
)

// Outcome is how the process must end: with exit code Code, or killed by Signal when it is not
// zero (the caller uses sdsignal.Die).
type Outcome struct {
	Code   int
	Signal syscall.Signal
}

var (
	siteInvalidParam = sdlog.Site{File: "common.cpp", Line: 320}
	siteUnknownArg   = sdlog.Site{File: "common.cpp", Line: 325}
	siteRequired     = sdlog.Site{File: "common.cpp", Line: 742}
	siteBadChoice    = sdlog.Site{File: "common.cpp", Line: 1230}
	siteBadSampler   = sdlog.Site{File: "common.cpp", Line: 1258}
	siteBadScheduler = sdlog.Site{File: "common.cpp", Line: 1286}
	siteSteps        = sdlog.Site{File: "common.cpp", Line: 2379}
)

// VersionLine is what `--version` prints.
const VersionLine = "stable-diffusion.cpp version master-827-97d2990, commit 97d2990\n"

// choices are the accepted values of manual options that take one of a fixed set. The error
// wording for these is the stand-in's; only the sampler and scheduler errors are captured.
var choices = map[string][]string{
	"--mode":            {"img_gen", "adetailer", "vid_gen", "upscale", "convert", "metadata"},
	"--preview":         {"none", "proj", "tae", "vae"},
	"--rng":             {"std_default", "cuda", "cpu"},
	"--sampler-rng":     {"std_default", "cuda", "cpu"},
	"--prediction":      {"eps", "v", "edm_v", "sd3_flow", "flux_flow", "sefi_flow"},
	"--lora-apply-mode": {"auto", "immediately", "at_runtime"},
	"--type": {"f32", "f16", "bf16", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q2_K", "q3_K", "q4_K",
		"q5_K", "q6_K", "q8_K", "iq2_xxs", "iq2_xs", "iq3_xxs", "iq1_s", "iq4_nl", "iq3_s", "iq2_s", "iq4_xs", "iq1_m", "tq1_0", "tq2_0"},
}

// Parse parses argv (argv[0] first) as sd.cpp does. When the process must end now (help,
// version, or a bad command line), it returns the outcome after printing what the real program
// prints; otherwise the parsed arguments and nil.
func Parse(table *sdargs.Table, argv []string, log *sdlog.Logger, help string) (*sdargs.Args, *Outcome) {
	args, err := table.Parse(argv[1:], func(o *sdargs.Option, v string) error {
		switch o.Long {
		case "--help":
			log.Raw(help)
			return sdargs.ErrStop
		case "--seed":
			_, err := sdargs.Stoll(v)
			return err
		case "--sampling-method", "--high-noise-sampling-method":
			if !sdgen.ValidSampler(v) {
				log.Errorf(siteBadSampler, "error: invalid sample method %s", v)
				return errors.New("bad sampler")
			}
		case "--scheduler":
			if _, ok := sdgen.CanonicalScheduler(v); !ok {
				log.Errorf(siteBadScheduler, "error: invalid scheduler %s", v)
				return errors.New("bad scheduler")
			}
		default:
			if c, ok := choices[o.Long]; ok && !slices.Contains(c, v) {
				log.Errorf(siteBadChoice, "error: invalid %s %s", strings.TrimPrefix(o.Long, "--"), v)
				return errors.New("bad choice")
			}
		}
		return nil
	})
	var unknown *sdargs.UnknownArgError
	var invalid *sdargs.InvalidParamError
	var term *sdargs.TerminateError
	switch {
	case err == nil:
		return args, nil
	case errors.Is(err, sdargs.ErrStop):
		return nil, &Outcome{}
	case errors.As(err, &unknown) && unknown.Arg == "--version":
		log.Raw(VersionLine)
		return nil, &Outcome{}
	case errors.As(err, &unknown):
		log.Errorf(siteUnknownArg, "error: unknown argument: %s", unknown.Arg)
		log.Raw(help)
		return nil, &Outcome{Code: 1}
	case errors.As(err, &invalid):
		log.Errorf(siteInvalidParam, "error: invalid parameter for argument: %s", invalid.Arg)
		log.Raw(help)
		return nil, &Outcome{Code: 1}
	case errors.As(err, &term):
		log.RawErr(term.Message())
		return nil, &Outcome{Signal: syscall.SIGABRT}
	}
	log.RawErr("stand-in: " + err.Error() + "\n")
	return nil, &Outcome{Code: 2}
}

// Check makes the checks sd.cpp makes after parsing: a model is required and the step count
// must be positive. It returns the outcome of a failed check, or nil.
func Check(args *sdargs.Args, log *sdlog.Logger, help string) *Outcome {
	if args.String("--model", "") == "" && args.String("--diffusion-model", "") == "" {
		log.Errorf(siteRequired, "error: the following arguments are required: model_path/diffusion_model")
		log.Raw(help)
		return &Outcome{Code: 1}
	}
	if args.Int("--steps", 20) <= 0 {
		log.Errorf(siteSteps, "error: the sample_steps must be greater than 0")
		log.Raw(help)
		return &Outcome{Code: 1}
	}
	return nil
}

// componentFlags are the model flags in sd.cpp's loading order.
var componentFlags = []struct{ flag, key string }{
	{"--model", "model"}, {"--clip_l", "clip_l"}, {"--clip_g", "clip_g"}, {"--t5xxl", "t5xxl"},
	{"--llm", "llm"}, {"--diffusion-model", "diffusion_model"}, {"--vae", "vae"},
}

// Components lists the model files given, in loading order.
func Components(args *sdargs.Args) []sdgen.Component {
	var comps []sdgen.Component
	for _, c := range componentFlags {
		if v := args.String(c.flag, ""); v != "" {
			comps = append(comps, sdgen.Component{Key: c.key, Path: v})
		}
	}
	return comps
}

package sdcli

import (
	_ "embed"
	"fmt"
	"strings"
	"text/template"

	"github.com/genailab/genailab/services/diffusion/internal/standin/sdargs"
	"github.com/genailab/genailab/services/diffusion/internal/standin/sdgen"
	"github.com/genailab/genailab/services/diffusion/internal/standin/sdlog"
)

// verboseText is the start of the captured `-v` output (the version, system info and the three
// parameter dumps), with the values that depend on the command line made template fields.
//
//go:embed verbose.tmpl
var verboseText string

var verboseTmpl = template.Must(template.New("verbose").Parse(verboseText))

// printParams prints the DEBUG dumps sd-cli prints first in verbose mode.
func printParams(log *sdlog.Logger, args *sdargs.Args, p sdgen.Params, comps []sdgen.Component, out string) {
	paths := map[string]string{}
	for _, c := range comps {
		paths[c.Key] = c.Path
	}
	none := func(s string) string {
		if s == "" {
			return "NONE"
		}
		return s
	}
	tiling := 0
	if args.Has("--vae-tiling") {
		tiling = 1
	}
	var b strings.Builder
	_ = verboseTmpl.Execute(&b, map[string]any{
		"OutputPath": out, "Verbose": true, "Color": log.Color, "Threads": max(1, args.Int("--threads", 2)),
		"Model": paths["model"], "ClipL": paths["clip_l"], "ClipG": paths["clip_g"], "T5xxl": paths["t5xxl"],
		"LLM": paths["llm"], "DiffusionModel": paths["diffusion_model"], "VAE": paths["vae"],
		"OffloadToCPU": args.Has("--offload-to-cpu"), "ClipOnCPU": args.Has("--clip-on-cpu"),
		"VAEOnCPU": args.Has("--vae-on-cpu"), "DiffusionFA": args.Has("--diffusion-fa"),
		"Prompt": p.Prompt, "Negative": p.Negative, "Width": p.Width, "Height": p.Height, "Batch": p.Batch,
		"CFG": fmt.Sprintf("%.2f", p.CFG), "Scheduler": none(p.Scheduler), "Sampler": none(p.Sampler),
		"Steps": p.Steps, "Seed": p.Seed, "VAETiling": tiling,
	})
	text := b.String()
	if log.Color {
		text = strings.ReplaceAll(text, "[DEBUG] ", "\x1b[37;1m[DEBUG]\x1b[0m ")
	}
	log.Raw(text)
}

package sdcli

import (
	"strconv"

	"github.com/genailab/genailab/pkg/imagereq"
	"github.com/genailab/genailab/services/diffusion/internal/sdargs"
)

// Args builds sd-cli's arguments for one image: the model files, -p -n -W -H --steps
// --cfg-scale -s --sampling-method, -b for a batch (n > 1), -t (only when threads > 0;
// otherwise sd.cpp picks the number of physical cores), the memory switches, and -o.
// Previews and edits need files of the run's directory: FeatureArgs adds them.
func Args(model sdargs.Model, mem sdargs.Memory, threads int, p imagereq.Params, output string) []string {
	a := model.Args()
	a = append(a,
		"-p", p.Prompt,
		"-n", p.NegativePrompt,
		"-W", strconv.Itoa(p.Width),
		"-H", strconv.Itoa(p.Height),
		"--steps", strconv.Itoa(p.Steps),
		"--cfg-scale", strconv.FormatFloat(p.CFGScale, 'f', -1, 64),
		"-s", strconv.FormatInt(p.Seed, 10),
		"--sampling-method", p.Sampler,
	)
	if p.N > 1 {
		a = append(a, "-b", strconv.Itoa(p.N))
	}
	if threads > 0 {
		a = append(a, "-t", strconv.Itoa(threads))
	}
	a = append(a, mem.Args()...)
	return append(a, "-o", output)
}

// Files are the files of one run in its private directory.
type Files struct {
	// Preview is where sd-cli writes its preview image (--preview-path).
	Preview string
	// InitImage and Mask hold an edit's uploads (-i, --mask).
	InitImage, Mask string
}

// FeatureArgs are the arguments of p's previews (--preview METHOD --preview-path
// --preview-interval, --preview-noisy) and edit (-i, --mask, --strength), each only when asked
// for; f names the files.
func FeatureArgs(p imagereq.Params, f Files) []string {
	var a []string
	if pv := p.Preview; pv.Enabled() {
		a = append(a, "--preview", pv.Method, "--preview-path", f.Preview, "--preview-interval", strconv.Itoa(pv.Interval))
		if pv.Noisy {
			a = append(a, "--preview-noisy")
		}
	}
	if e := p.Edit; e != nil {
		a = append(a, "-i", f.InitImage)
		if e.Mask != nil {
			a = append(a, "--mask", f.Mask)
		}
		a = append(a, "--strength", strconv.FormatFloat(e.Strength, 'f', -1, 64))
	}
	return a
}

package sdcli

import (
	"strconv"

	"github.com/genailab/genailab/pkg/imagereq"
	"github.com/genailab/genailab/services/diffusion/internal/sdargs"
)

// Args builds sd-cli's arguments for one image: the model files, -p -n -W -H --steps
// --cfg-scale -s --sampling-method, -t (only when threads > 0; otherwise sd.cpp picks the
// number of physical cores), the memory switches, and -o.
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
	if threads > 0 {
		a = append(a, "-t", strconv.Itoa(threads))
	}
	a = append(a, mem.Args()...)
	return append(a, "-o", output)
}

package jobs

import (
	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	"github.com/genailab/genailab/pkg/grpcerr"
	"github.com/genailab/genailab/pkg/imagereq"
)

// Validate checks image parameters at the API edge with the one image-request validator
// (pkg/imagereq, the same rules the diffusion service applies), so that a bad request is
// refused at once: before it is queued and before any LLM is offloaded for it.
func Validate(p *diffusionv1.ImageParams) error {
	_, err := Resolve(p)
	return err
}

// Resolve validates p as Validate does and returns the parameters the image will be made
// with, every default resolved by imagereq (size, steps, cfg scale, sampler, and a drawn
// seed when none was given): what a job records and runs, so that its record, its events
// and every host it is tried on agree.
func Resolve(p *diffusionv1.ImageParams) (*diffusionv1.ImageParams, error) {
	if p == nil {
		return nil, grpcerr.Invalidf("params are required")
	}
	r, err := imagereq.Resolve(imagereq.FromProto(p), nil)
	if err != nil {
		return nil, grpcerr.Invalidf("%s", err.Error())
	}
	return imagereq.ToProto(r), nil
}

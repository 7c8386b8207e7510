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
	if p == nil {
		return grpcerr.Invalidf("params are required")
	}
	if err := imagereq.Validate(p); err != nil {
		return grpcerr.Invalidf("%s", err.Error())
	}
	return nil
}

// Command genailab-diffusion runs the diffusion service: stable-diffusion.cpp (per-request
// sd-cli or a persistent sd-server) behind the gRPC DiffusionService and ModelService, and the
// seed's HTTP wrapper. With -demo-engines it runs the demo engine instead: the sd.cpp stand-ins
// sd-cli-standin and sd-server-standin, separate programs (`make build` puts them in bin/); this
// binary carries none of their code.
//
// Pointing it at the real stable-diffusion.cpp: build or download sd-cli and sd-server
// (https://github.com/leejet/stable-diffusion.cpp releases), then either put them on PATH
// (sd-cli, or the older name sd; sd-server) or give their paths:
//
//	genailab-diffusion -sd-cli /opt/sdcpp/sd-cli -sd-server /opt/sdcpp/sd-server
//	GENAILAB_DIFFUSION_SD_CLI=/opt/sdcpp/sd-cli GENAILAB_DIFFUSION_SD_SERVER=/opt/sdcpp/sd-server genailab-diffusion
//
// (or the keys sd-cli and sd-server in the -config YAML file). Without -demo-engines nothing else
// changes: the same arguments, output parsing and job API are used for the real programs, whose
// captured behaviour the stand-ins reproduce. GetInfo's unavailable_reason says when no binary
// was found.
package main

import (
	"github.com/genailab/genailab/pkg/cmdmain"
	"github.com/genailab/genailab/services/diffusion/internal/server"
)

func main() { cmdmain.Serve[server.Options]("genailab-diffusion", server.Run) }

package stack

// Packages are the Go packages of the programs Start runs: the five services and the demo
// image engine (the sd.cpp stand-ins). Tests and benchmarks that start a stack build these.
var Packages = []string{
	"github.com/genailab/genailab/services/llm/cmd/genailab-llm",
	"github.com/genailab/genailab/services/diffusion/cmd/genailab-diffusion",
	"github.com/genailab/genailab/services/monitor/cmd/genailab-monitor",
	"github.com/genailab/genailab/services/orchestrator/cmd/genailab-orchestrator",
	"github.com/genailab/genailab/services/gateway/cmd/genailab-gateway",
	"github.com/genailab/genailab/services/diffusion/cmd/sd-cli-standin",
	"github.com/genailab/genailab/services/diffusion/cmd/sd-server-standin",
}

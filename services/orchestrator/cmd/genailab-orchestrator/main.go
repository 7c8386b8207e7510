// Command genailab-orchestrator runs the orchestrator: image generation with automatic
// LLM offload and reload, placed on the lab's hosts (-hosts, -hosts-dns, or the one host of
// -llm-addr, -diffusion-addr and -monitor-addr), whose services it reaches by their gRPC
// addresses.
// Every flag can also be set as GENAILAB_ORCHESTRATOR_<FLAG> or in a YAML file (-config).
package main

import (
	"github.com/genailab/genailab/pkg/cmdmain"
	"github.com/genailab/genailab/services/orchestrator/internal/server"
)

func main() { cmdmain.Serve[server.Options]("genailab-orchestrator", server.Run) }

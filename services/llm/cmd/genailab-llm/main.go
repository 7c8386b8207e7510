// Command genailab-llm runs the LLM service: it supervises one llama-server
// on this host, relays chat to it, and manages the llm model store, over
// gRPC. Every flag can also be set as GENAILAB_LLM_<FLAG> or in a YAML file
// (-config).
package main

import (
	"github.com/genailab/genailab/pkg/cmdmain"
	"github.com/genailab/genailab/services/llm/internal/server"
)

func main() { cmdmain.Serve[server.Options]("genailab-llm", server.Run) }

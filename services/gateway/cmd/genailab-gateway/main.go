// Command genailab-gateway serves the REST API (grpc-gateway) in front of genailab's
// gRPC services.
package main

import (
	"github.com/genailab/genailab/pkg/cmdmain"
	"github.com/genailab/genailab/services/gateway/internal/server"
)

func main() { cmdmain.Serve[server.Options]("genailab-gateway", server.Run) }

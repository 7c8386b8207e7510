// Package server is the orchestrator process: its gRPC OrchestratorService and Run.
//
// This first version serves the seed contract (CreateImage, GetHealth) by calling the
// diffusion service over gRPC; offload/reload, the queue, events and jobs come with the
// orchestrator issue and answer Unimplemented until then.
package server

import (
	"context"
	"fmt"
	"log/slog"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/pkg/auth"
	"github.com/genailab/genailab/pkg/grpcserver"
)

// Options configure the orchestrator process.
type Options struct {
	// GRPCAddr is the listen address, default 127.0.0.1:50054.
	GRPCAddr string
	// AddrFile receives the bound address once listening.
	AddrFile string
	// Token is required from callers when set; also sent to the services it calls.
	Token string
	// DiffusionAddr, LLMAddr and MonitorAddr are the host's services.
	DiffusionAddr, LLMAddr, MonitorAddr string
	Logger                              *slog.Logger
}

// Service implements OrchestratorService.
type Service struct {
	orchestratorv1.UnimplementedOrchestratorServiceServer
	diffusion diffusionv1.DiffusionServiceClient
	log       *slog.Logger
}

// Run serves the orchestrator until ctx is done.
func Run(ctx context.Context, opts Options) error {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.GRPCAddr == "" {
		opts.GRPCAddr = "127.0.0.1:50054"
	}
	dial := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if opts.Token != "" {
		dial = append(dial, grpc.WithPerRPCCredentials(auth.TokenCredentials{Token: opts.Token}))
	}
	dcc, err := grpc.NewClient(opts.DiffusionAddr, dial...)
	if err != nil {
		return fmt.Errorf("dial diffusion service %s: %w", opts.DiffusionAddr, err)
	}
	defer dcc.Close()
	srv, err := grpcserver.Listen(grpcserver.Options{Addr: opts.GRPCAddr, AddrFile: opts.AddrFile, Token: opts.Token, Logger: log})
	if err != nil {
		return err
	}
	orchestratorv1.RegisterOrchestratorServiceServer(srv.GRPC(), &Service{diffusion: diffusionv1.NewDiffusionServiceClient(dcc), log: log})
	return srv.Serve(ctx)
}

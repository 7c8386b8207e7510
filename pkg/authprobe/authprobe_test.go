package authprobe_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/pkg/auth"
	"github.com/genailab/genailab/pkg/authprobe"
	"github.com/genailab/genailab/pkg/grpcserver"
)

// A grpcserver with a token and two real service registrations (unimplemented): the
// probe lists every method of both, the health and the reflection service; without the
// token each answers Unauthenticated except health; with it each reaches its handler
// (Unimplemented), so the refusal is the guard's and not a missing route.
func TestProbeListsAndCallsEveryMethod(t *testing.T) {
	s, err := grpcserver.Listen(grpcserver.Options{Addr: "127.0.0.1:0", Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	orchestratorv1.RegisterOrchestratorServiceServer(s.GRPC(), orchestratorv1.UnimplementedOrchestratorServiceServer{})
	llmv1.RegisterLLMServiceServer(s.GRPC(), llmv1.UnimplementedLLMServiceServer{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	dial := func(tok string) *grpc.ClientConn {
		opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
		if tok != "" {
			opts = append(opts, grpc.WithPerRPCCredentials(auth.TokenCredentials{Token: tok}))
		}
		cc, err := grpc.NewClient(s.Addr(), opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cc.Close() })
		return cc
	}
	methods, err := authprobe.Methods(ctx, dial("tok"))
	if err != nil {
		t.Fatal(err)
	}
	want := len(orchestratorv1.OrchestratorService_ServiceDesc.Methods) + len(orchestratorv1.OrchestratorService_ServiceDesc.Streams) +
		len(llmv1.LLMService_ServiceDesc.Methods) + len(llmv1.LLMService_ServiceDesc.Streams)
	var own, streams int
	for _, m := range methods {
		if strings.HasPrefix(m.FullName, "/genailab.") {
			own++
			if m.ServerStream {
				streams++
			}
		}
	}
	if own != want || streams == 0 {
		t.Fatalf("listed %d genailab methods (%d streaming), the descriptors have %d: %v", own, streams, want, methods)
	}
	if _, err := authprobe.Methods(ctx, dial("")); err == nil {
		t.Fatal("reflection listed the methods without the token")
	}
	none, right := dial(""), dial("tok")
	for _, m := range methods {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		health := strings.HasPrefix(m.FullName, "/grpc.health.v1.Health/")
		if got := authprobe.Call(cctx, none, m); !health && got != codes.Unauthenticated {
			t.Errorf("%s without the token: %v", m.FullName, got)
		}
		if own := strings.HasPrefix(m.FullName, "/genailab."); own {
			if got := authprobe.Call(cctx, right, m); got != codes.Unimplemented {
				t.Errorf("%s with the token: %v, want Unimplemented (the handler)", m.FullName, got)
			}
		}
		cancel()
	}
}

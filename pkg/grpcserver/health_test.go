package grpcserver_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/genailab/genailab/pkg/grpcserver"
)

// The health-only listener answers without a token, mirrors the main server's statuses,
// and serves nothing else.
func TestHealthListenerMirrorsStatusesAndServesNothingElse(t *testing.T) {
	s := start(t, grpcserver.Options{Addr: "127.0.0.1:0", HealthAddr: "127.0.0.1:0", Token: "secret"})
	if s.HealthAddr() == "" || s.HealthAddr() == s.Addr() {
		t.Fatalf("health address %q (main %q)", s.HealthAddr(), s.Addr())
	}
	cc := dial(t, s.HealthAddr())
	hc := healthpb.NewHealthClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	check := func(svc string) healthpb.HealthCheckResponse_ServingStatus {
		t.Helper()
		for {
			r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
			if err == nil {
				return r.GetStatus()
			}
			if ctx.Err() != nil {
				t.Fatalf("health check %q: %v", svc, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if st := check(""); st != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("overall status %s", st)
	}
	s.SetServing("test.Panic", false)
	if st := check("test.Panic"); st != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("mirrored status %s, want NOT_SERVING", st)
	}
	stream, err := reflectpb.NewServerReflectionClient(cc).ServerReflectionInfo(ctx)
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.Unimplemented {
		t.Fatalf("reflection on the health listener: %v, want Unimplemented", err)
	}
}

// TestRequestsOverGRPCsDefaultFourMiBAreAccepted is the regression test of image edits refused
// between the services: a request over gRPC's default 4 MiB (here a 20 MiB health check, whose
// service name nobody registered) reaches the service, and so does its answer to a caller
// dialled with CallOptions.
func TestRequestsOverGRPCsDefaultFourMiBAreAccepted(t *testing.T) {
	s := start(t, grpcserver.Options{Addr: "127.0.0.1:0"})
	cc, err := grpc.NewClient(s.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()), grpcserver.CallOptions())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{Service: strings.Repeat("x", 20<<20)}, grpc.WaitForReady(true))
	if status.Code(err) != codes.NotFound {
		t.Fatalf("a 20 MiB request: %v, want NotFound (unknown service): it must not be refused for its size", err)
	}
	_, err = healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{Service: strings.Repeat("x", grpcserver.MaxRequestBytes+1)})
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("a request over MaxRequestBytes: %v, want ResourceExhausted", err)
	}
}

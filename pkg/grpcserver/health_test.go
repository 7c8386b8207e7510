package grpcserver_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
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

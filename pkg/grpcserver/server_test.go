package grpcserver_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/genailab/genailab/pkg/auth"
	"github.com/genailab/genailab/pkg/grpcserver"
)

// panicService is a hand-written service whose only method panics.
var panicService = grpc.ServiceDesc{
	ServiceName: "test.Panic",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Boom",
		Handler: func(srv any, ctx context.Context, dec func(any) error, in grpc.UnaryServerInterceptor) (any, error) {
			req := new(emptypb.Empty)
			if err := dec(req); err != nil {
				return nil, err
			}
			h := func(context.Context, any) (any, error) { panic("boom") }
			return in(ctx, req, &grpc.UnaryServerInfo{Server: srv, FullMethod: "/test.Panic/Boom"}, h)
		},
	}},
}

func start(t *testing.T, opts grpcserver.Options) *grpcserver.Server {
	t.Helper()
	s, err := grpcserver.Listen(opts)
	if err != nil {
		t.Fatal(err)
	}
	var impl any = struct{}{}
	s.GRPC().RegisterService(&panicService, impl)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s
}

func dial(t *testing.T, addr string, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func TestHealthReflectionAndAddrFile(t *testing.T) {
	addrFile := filepath.Join(t.TempDir(), "addr")
	s := start(t, grpcserver.Options{Addr: "127.0.0.1:0", AddrFile: addrFile})
	got, err := os.ReadFile(addrFile)
	if err != nil || string(got) != s.Addr() {
		t.Fatalf("addr file %q (%v), want %q", got, err, s.Addr())
	}
	cc := dial(t, s.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, svc := range []string{"", "test.Panic"} {
		resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("health %q: %v %v", svc, resp, err)
		}
	}
	stream, err := reflectpb.NewServerReflectionClient(cc).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectpb.ServerReflectionRequest{MessageRequest: &reflectpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, svc := range resp.GetListServicesResponse().GetService() {
		names[svc.Name] = true
	}
	for _, want := range []string{"test.Panic", "grpc.health.v1.Health"} {
		if !names[want] {
			t.Errorf("reflection lacks %s: %v", want, names)
		}
	}
}

func TestPanicBecomesInternal(t *testing.T) {
	s := start(t, grpcserver.Options{Addr: "127.0.0.1:0"})
	cc := dial(t, s.Addr())
	err := cc.Invoke(context.Background(), "/test.Panic/Boom", &emptypb.Empty{}, &emptypb.Empty{})
	if status.Code(err) != codes.Internal {
		t.Fatalf("got %v, want Internal", err)
	}
	// The server survived.
	if _, err := healthpb.NewHealthClient(cc).Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("server died: %v", err)
	}
}

func TestTokenRequiredButHealthOpen(t *testing.T) {
	s := start(t, grpcserver.Options{Addr: "127.0.0.1:0", Token: "s3cret"})
	anon := dial(t, s.Addr())
	if _, err := healthpb.NewHealthClient(anon).Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("health must stay open: %v", err)
	}
	err := anon.Invoke(context.Background(), "/test.Panic/Boom", &emptypb.Empty{}, &emptypb.Empty{})
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("no token: got %v, want Unauthenticated", err)
	}
	wrong := dial(t, s.Addr(), grpc.WithPerRPCCredentials(auth.TokenCredentials{Token: "nope"}))
	if err := wrong.Invoke(context.Background(), "/test.Panic/Boom", &emptypb.Empty{}, &emptypb.Empty{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("wrong token: got %v", err)
	}
	right := dial(t, s.Addr(), grpc.WithPerRPCCredentials(auth.TokenCredentials{Token: "s3cret"}))
	if err := right.Invoke(context.Background(), "/test.Panic/Boom", &emptypb.Empty{}, &emptypb.Empty{}); status.Code(err) != codes.Internal {
		t.Fatalf("right token must reach the handler (which panics): got %v", err)
	}
}

func TestRemoteAddressNeedsAuth(t *testing.T) {
	_, err := grpcserver.Listen(grpcserver.Options{Addr: "0.0.0.0:0"})
	if !errors.Is(err, grpcserver.ErrInsecureRemote) {
		t.Fatalf("got %v, want ErrInsecureRemote", err)
	}
	s, err := grpcserver.Listen(grpcserver.Options{Addr: "0.0.0.0:0", Token: "t"})
	if err != nil {
		t.Fatalf("with a token: %v", err)
	}
	s.Close()
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:1": true, "[::1]:1": true, "localhost:1": true, "127.9.9.9:0": true,
		":8080": false, "0.0.0.0:1": false, "10.0.0.1:1": false, "example.com:1": false,
	} {
		if got := grpcserver.IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v", addr, got)
		}
	}
}

package main

import (
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// A real gRPC health server on a :0 port: SERVING passes, NOT_SERVING and a closed port fail;
// without flags the address comes from the service's own environment variable.
func TestProbe(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	_, port, _ := net.SplitHostPort(lis.Addr().String())
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

	if err := run(nil, env(map[string]string{"GENAILAB_DIFFUSION_HEALTH_ADDR": ":" + port})); err != nil {
		t.Errorf("serving, address from the environment: %v", err)
	}
	if err := run([]string{"-tcp", lis.Addr().String()}, env(nil)); err != nil {
		t.Errorf("tcp: %v", err)
	}
	hs.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	if err := run([]string{"-grpc", lis.Addr().String()}, env(nil)); err == nil || !strings.Contains(err.Error(), "NOT_SERVING") {
		t.Errorf("not serving: %v", err)
	}
	if err := run(nil, env(nil)); err == nil || !strings.Contains(err.Error(), "nothing to probe") {
		t.Errorf("nothing to probe: %v", err)
	}
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := closed.Addr().String()
	closed.Close()
	if err := run(nil, env(map[string]string{"GENAILAB_GATEWAY_HTTP_ADDR": addr})); err == nil {
		t.Error("a closed gateway port passed")
	}
}

func TestLoopback(t *testing.T) {
	for in, want := range map[string]string{":50061": "127.0.0.1:50061", "0.0.0.0:8080": "127.0.0.1:8080", "[::]:1": "127.0.0.1:1", "10.0.0.5:9": "10.0.0.5:9"} {
		if got := loopback(in); got != want {
			t.Errorf("loopback(%q) = %q, want %q", in, got, want)
		}
	}
}

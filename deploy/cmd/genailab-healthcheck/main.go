// Command genailab-healthcheck is the container images' HEALTHCHECK: the images have no
// shell and no curl, so the probe is a program. It exits 0 when the service of its
// container answers and 1 otherwise, printing why.
//
// Without flags it probes the address the service itself was given through the
// environment, so that one setting configures both: GENAILAB_<SERVICE>_HEALTH_ADDR (the
// service's plaintext, health-only gRPC listener) for the llm, diffusion, monitor and
// orchestrator containers, which must report SERVING; GENAILAB_GATEWAY_HTTP_ADDR for the
// gateway, which must accept a TCP connection (its GET /health reports the whole lab, not
// the gateway). -grpc ADDR or -tcp ADDR names the address instead. A wildcard host
// (":50061", "0.0.0.0:50061") is probed on loopback.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// grpcEnvs are the services' health listener variables, in the order they are looked for.
var grpcEnvs = []string{
	"GENAILAB_LLM_HEALTH_ADDR", "GENAILAB_DIFFUSION_HEALTH_ADDR",
	"GENAILAB_MONITOR_HEALTH_ADDR", "GENAILAB_ORCHESTRATOR_HEALTH_ADDR",
}

const gatewayEnv = "GENAILAB_GATEWAY_HTTP_ADDR"

func main() {
	if err := run(os.Args[1:], os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "genailab-healthcheck:", err)
		os.Exit(1)
	}
}

func run(args []string, getenv func(string) string) error {
	fs := flag.NewFlagSet("genailab-healthcheck", flag.ContinueOnError)
	grpcAddr := fs.String("grpc", "", "probe this gRPC health listener (grpc.health.v1, must be SERVING)")
	tcpAddr := fs.String("tcp", "", "probe this TCP address (must accept a connection)")
	timeout := fs.Duration("timeout", 3*time.Second, "limit of the probe")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *grpcAddr == "" && *tcpAddr == "" {
		for _, k := range grpcEnvs {
			if v := getenv(k); v != "" {
				*grpcAddr = v
				break
			}
		}
		if *grpcAddr == "" {
			*tcpAddr = getenv(gatewayEnv)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	switch {
	case *grpcAddr != "":
		return probeGRPC(ctx, loopback(*grpcAddr))
	case *tcpAddr != "":
		return probeTCP(ctx, loopback(*tcpAddr))
	default:
		return errors.New("nothing to probe: give -grpc or -tcp, or set GENAILAB_<SERVICE>_HEALTH_ADDR (or " + gatewayEnv + ")")
	}
}

// loopback turns a listen address with a wildcard host into one to dial.
func loopback(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

func probeGRPC(ctx context.Context, addr string) error {
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("dial %s: %w", addr, err)
	}
	defer cc.Close()
	r, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		return fmt.Errorf("health of %s: %w", addr, err)
	}
	if s := r.GetStatus(); s != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("%s is %s", addr, s)
	}
	return nil
}

func probeTCP(ctx context.Context, addr string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", addr, err)
	}
	return c.Close()
}

package stack

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/genailab/genailab/pkg/addrfile"
	"github.com/genailab/genailab/pkg/execfile"
)

// service is one process of the stack.
type service struct {
	// name is the short name ("llm") and binary the executable's name ("genailab-llm").
	name, binary string
	// args are the flags besides -addr-file.
	args []string
	// grpc says whether readiness is grpc health SERVING (else: the address accepts TCP).
	grpc bool
	// addrFile is where the service writes its bound address.
	addrFile string
}

// readAddr returns the address in the service's address file, or "" when not written yet.
func (s *service) readAddr() string { return addrfile.Read(s.addrFile) }

// probe reports readiness: the address file exists and the service answers.
func (s *service) probe(ctx context.Context) (bool, error) {
	addr := s.readAddr()
	if addr == "" {
		return false, fmt.Errorf("%s has not written %s yet", s.name, filepath.Base(s.addrFile))
	}
	if !s.grpc {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return false, err
		}
		c.Close()
		return true, nil
	}
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return false, err
	}
	defer cc.Close()
	resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		return false, err
	}
	return resp.Status == healthpb.HealthCheckResponse_SERVING, nil
}

// findBinary looks for name in binDir, then next to the running executable, then in PATH.
func findBinary(binDir, name string) (string, error) {
	var dirs []string
	if binDir != "" {
		dirs = append(dirs, binDir)
	}
	if exe, err := os.Executable(); err == nil {
		dirs = append(dirs, filepath.Dir(exe))
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if execfile.Is(p) {
			return p, nil
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s not found in %s or PATH (build it with `make build`)", name, strings.Join(dirs, ", "))
}

// waitTimeout is how long each service may take to become ready.
const waitTimeout = 60 * time.Second

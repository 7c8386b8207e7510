package main_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	monitorv1 "github.com/genailab/genailab/gen/monitor/v1"
	"github.com/genailab/genailab/pkg/grpcserver"
	"github.com/genailab/genailab/pkg/tlsconfig"
	"github.com/genailab/genailab/pkg/tlsconfig/pki"
)

// TestTokenAndTLSFlags points genaictl at genailab's gRPC server (pkg/grpcserver with a
// token and mutual TLS from pkg/tlsconfig) serving an unimplemented MonitorService: a
// call that gets through TLS and the token guard is answered "unimplemented", one that
// does not is refused with the guard's or the handshake's error.
func TestTokenAndTLSFlags(t *testing.T) {
	needStack(t)
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ca, err := pki.NewCA("genaictl test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	host, err := ca.Issue(pki.Request{CommonName: "host", IPs: []net.IP{net.ParseIP("127.0.0.1")}})
	if err != nil {
		t.Fatal(err)
	}
	client, err := ca.Issue(pki.Request{CommonName: "genaictl", Usage: pki.ClientUsage})
	if err != nil {
		t.Fatal(err)
	}
	caFile := write("ca.crt", ca.CertPEM)
	cfg, err := tlsconfig.Server(write("host.crt", host.CertPEM), write("host.key", host.KeyPEM), caFile)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := grpcserver.Listen(grpcserver.Options{Addr: "127.0.0.1:0", Token: "s3cret", TLS: cfg})
	if err != nil {
		t.Fatal(err)
	}
	monitorv1.RegisterMonitorServiceServer(srv.GRPC(), monitorv1.UnimplementedMonitorServiceServer{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	tlsArgs := []string{"--monitor-addr", srv.Addr(), "--tls-ca", caFile, "--tls-client-cert", write("c.crt", client.CertPEM), "--tls-client-key", write("c.key", client.KeyPEM)}
	run := func(extraEnv []string, args ...string) result {
		cmd := command(t, append(append([]string{}, tlsArgs...), args...)...)
		cmd.Env = append(cmd.Env, extraEnv...)
		return runCmd(t, cmd, "")
	}
	if r := run(nil, "--token", "s3cret", "system", "info"); r.code != 1 || !strings.Contains(r.stderr, "GetSystemInfo not implemented") {
		t.Errorf("--token: want to get through TLS and the guard: %s", r)
	}
	if r := run([]string{"GENAILAB_TOKEN=s3cret"}, "system", "info"); !strings.Contains(r.stderr, "GetSystemInfo not implemented") {
		t.Errorf("GENAILAB_TOKEN: %s", r)
	}
	if r := run([]string{"GENAILAB_TOKEN=s3cret"}, "--token", "wrong", "system", "info"); !strings.Contains(r.stderr, "wrong bearer token (see --token or GENAILAB_TOKEN)") {
		t.Errorf("the flag wins over the environment: %s", r)
	}
	r := run(nil, "system", "info")
	if r.code != 1 {
		t.Fatal(r)
	}
	oneLineError(t, r, "missing bearer token")

	// Without the client certificate the server refuses the connection (with TLS 1.3 the
	// client may see the refusal as a certificate error or as a closed connection).
	cmd := command(t, "--monitor-addr", srv.Addr(), "--tls-ca", caFile, "--token", "s3cret", "system", "info")
	if r := runCmd(t, cmd, ""); r.code != 1 || !strings.Contains(r.stderr, "monitor service at "+srv.Addr()+": ") || strings.Contains(r.stderr, "not implemented") {
		t.Errorf("without a client certificate: %s", r)
	}
	// Plain TCP to a TLS server fails too, and TLS options without a CA are refused.
	if r := runCmd(t, command(t, "--monitor-addr", srv.Addr(), "--token", "s3cret", "system", "info"), ""); r.code != 1 {
		t.Errorf("plaintext: %s", r)
	}
	fails(t, 1, "a CA file is required", "--tls-client-cert", "x.crt", "--tls-client-key", "x.key", "system", "info")
}

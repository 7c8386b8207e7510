package grpcserver_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/genailab/genailab/pkg/grpcserver"
	"github.com/genailab/genailab/pkg/tlsconfig"
	"github.com/genailab/genailab/pkg/tlsconfig/pki"
)

// certs are real PEM files: a lab CA and a host certificate it signed, for the
// configurations the services build from their -tls-* flags.
type certs struct {
	ca, cert, key string
}

func newCerts(t *testing.T) certs {
	t.Helper()
	ca, err := pki.NewCA("grpcserver test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	host, err := ca.Issue(pki.Request{CommonName: "host", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return certs{ca: write("ca.crt", ca.CertPEM), cert: write("host.crt", host.CertPEM), key: write("host.key", host.KeyPEM)}
}

// serverOnlyTLS is what -tls-cert and -tls-key without -tls-client-ca configure.
func (c certs) serverOnlyTLS(t *testing.T) *tls.Config {
	t.Helper()
	cfg, err := tlsconfig.ServerFlags{Cert: c.cert, Key: c.key}.Config(nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// mutualTLS is what -tls-cert, -tls-key and -tls-client-ca configure.
func (c certs) mutualTLS(t *testing.T) *tls.Config {
	t.Helper()
	cfg, err := tlsconfig.ServerFlags{Cert: c.cert, Key: c.key, ClientCA: c.ca}.Config(nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// listenOK listens (a real listener; 0.0.0.0:0 binds every interface, no traffic is
// sent to it) and closes the server again.
func listenOK(t *testing.T, opts grpcserver.Options) {
	t.Helper()
	s, err := grpcserver.Listen(opts)
	if err != nil {
		t.Fatalf("Listen(%s, token %t, tls %t): %v", opts.Addr, opts.Token != "", opts.TLS != nil, err)
	}
	s.Close()
}

// A service bound to every interface with only -tls-cert/-tls-key (no client CA, no
// token) served anyone: TLS encrypts but authenticates no caller. It is refused, and
// the error names the flags that would make it safe.
func TestTLSWithoutClientAuthIsRefusedOffLoopback(t *testing.T) {
	c := newCerts(t)
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0"} {
		_, err := grpcserver.Listen(grpcserver.Options{Addr: addr, TLS: c.serverOnlyTLS(t)})
		if !errors.Is(err, grpcserver.ErrInsecureRemote) {
			t.Fatalf("%s with server-only TLS: got %v, want ErrInsecureRemote", addr, err)
		}
		for _, want := range []string{addr, "only encrypts", "-token", "-tls-client-ca"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %q does not mention %q", addr, err, want)
			}
		}
	}
	// A configuration that asks for client certificates without verifying them
	// (RequestClientCert, no client CA, no verification hook) is no better.
	cfg := c.serverOnlyTLS(t).Clone()
	cfg.ClientAuth = tls.RequestClientCert
	if _, err := grpcserver.Listen(grpcserver.Options{Addr: "0.0.0.0:0", TLS: cfg}); !errors.Is(err, grpcserver.ErrInsecureRemote) {
		t.Fatalf("unverified client certificates: got %v, want ErrInsecureRemote", err)
	}
}

func TestNoAuthAtAllIsRefusedOffLoopback(t *testing.T) {
	_, err := grpcserver.Listen(grpcserver.Options{Addr: "0.0.0.0:0"})
	if !errors.Is(err, grpcserver.ErrInsecureRemote) {
		t.Fatalf("got %v, want ErrInsecureRemote", err)
	}
	for _, want := range []string{"-token", "-tls-cert", "-tls-key", "-tls-client-ca"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestTokenOnlyIsAcceptedOffLoopback(t *testing.T) {
	listenOK(t, grpcserver.Options{Addr: "0.0.0.0:0", Token: "t"})
	// A token over server-only TLS: the token authenticates, TLS protects it in transit.
	listenOK(t, grpcserver.Options{Addr: "0.0.0.0:0", Token: "t", TLS: newCerts(t).serverOnlyTLS(t)})
}

func TestMutualTLSOnlyIsAcceptedOffLoopback(t *testing.T) {
	c := newCerts(t)
	listenOK(t, grpcserver.Options{Addr: "0.0.0.0:0", TLS: c.mutualTLS(t)})
	// crypto/tls's own verification counts too.
	pool := x509.NewCertPool()
	pem, err := os.ReadFile(c.ca)
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(pem)
	cfg := c.serverOnlyTLS(t).Clone()
	cfg.ClientAuth, cfg.ClientCAs = tls.RequireAndVerifyClientCert, pool
	listenOK(t, grpcserver.Options{Addr: "0.0.0.0:0", TLS: cfg})
}

// Loopback needs no authentication: the address itself keeps other hosts out.
func TestLoopbackWithoutAuthIsAccepted(t *testing.T) {
	c := newCerts(t)
	for _, addr := range []string{"127.0.0.1:0", "localhost:0"} {
		listenOK(t, grpcserver.Options{Addr: addr})
		listenOK(t, grpcserver.Options{Addr: addr, TLS: c.serverOnlyTLS(t)})
	}
	// And it serves: a health check over a real loopback connection.
	s := start(t, grpcserver.Options{Addr: "127.0.0.1:0"})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := healthpb.NewHealthClient(dial(t, s.Addr())).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("loopback without auth: %v", err)
	}
}

// The explicit escape hatch still works, for TLS-only as for plaintext, and says
// loudly what it allows.
func TestAllowInsecureRemoteStillOverrides(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	listenOK(t, grpcserver.Options{Addr: "0.0.0.0:0", AllowInsecureRemote: true, Logger: log})
	listenOK(t, grpcserver.Options{Addr: "0.0.0.0:0", AllowInsecureRemote: true, TLS: newCerts(t).serverOnlyTLS(t), Logger: log})
	if n := strings.Count(logs.String(), "without client authentication"); n != 2 {
		t.Fatalf("want two warnings, got %d:\n%s", n, logs.String())
	}
}

func TestClientCertsRequired(t *testing.T) {
	c := newCerts(t)
	pool := x509.NewCertPool()
	hook := func(tls.ConnectionState) error { return nil }
	for name, tc := range map[string]struct {
		cfg  *tls.Config
		want bool
	}{
		"nil":                             {nil, false},
		"server-only flags":               {c.serverOnlyTLS(t), false},
		"mutual TLS flags":                {c.mutualTLS(t), true},
		"require and verify":              {&tls.Config{ClientAuth: tls.RequireAndVerifyClientCert}, true},
		"require any, unverified":         {&tls.Config{ClientAuth: tls.RequireAnyClientCert, ClientCAs: pool}, false},
		"request, no CA, hook":            {&tls.Config{ClientAuth: tls.RequestClientCert, VerifyConnection: hook}, false},
		"request, CA, hook":               {&tls.Config{ClientAuth: tls.RequestClientCert, ClientCAs: pool, VerifyConnection: hook}, true},
		"verify if given, CA, no hook":    {&tls.Config{ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: pool}, false},
		"no client cert, CA and hook set": {&tls.Config{ClientAuth: tls.NoClientCert, ClientCAs: pool, VerifyConnection: hook}, false},
	} {
		if got := grpcserver.ClientCertsRequired(tc.cfg); got != tc.want {
			t.Errorf("%s: ClientCertsRequired = %v, want %v", name, got, tc.want)
		}
	}
}

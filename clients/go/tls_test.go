package genailab_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	genailab "github.com/genailab/genailab/clients/go"
	monitorv1 "github.com/genailab/genailab/gen/monitor/v1"
	"github.com/genailab/genailab/pkg/grpcserver"
	"github.com/genailab/genailab/pkg/tlsconfig"
	"github.com/genailab/genailab/pkg/tlsconfig/pki"
)

// lab is a throw-away certificate authority with a host and a client certificate, as PEM files.
type lab struct {
	ca, hostCert, hostKey, clientCert, clientKey, otherCA string
}

func newLab(t *testing.T) lab {
	t.Helper()
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ca, err := pki.NewCA("genailab test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, err := pki.NewCA("another CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	host, err := ca.Issue(pki.Request{CommonName: "host", DNSNames: []string{"genailab.test"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}})
	if err != nil {
		t.Fatal(err)
	}
	client, err := ca.Issue(pki.Request{CommonName: "genaictl", Usage: pki.ClientUsage})
	if err != nil {
		t.Fatal(err)
	}
	return lab{ca: write("ca.crt", ca.CertPEM), otherCA: write("other.crt", other.CertPEM),
		hostCert: write("host.crt", host.CertPEM), hostKey: write("host.key", host.KeyPEM),
		clientCert: write("client.crt", client.CertPEM), clientKey: write("client.key", client.KeyPEM)}
}

// startTLSServer runs genailab's gRPC server (pkg/grpcserver with its token guard, and
// pkg/tlsconfig's server TLS) with a MonitorService whose methods are all unimplemented:
// a call that passes TLS and the token gets Unimplemented; one that does not gets
// Unavailable or Unauthenticated.
func startTLSServer(t *testing.T, l lab, token string, mutual bool) string {
	t.Helper()
	var cfg *tls.Config
	var err error
	if mutual {
		cfg, err = tlsconfig.Server(l.hostCert, l.hostKey, l.ca)
	} else {
		cfg, err = tlsconfig.ServerWithoutClientCerts(l.hostCert, l.hostKey)
	}
	if err != nil {
		t.Fatal(err)
	}
	srv, err := grpcserver.Listen(grpcserver.Options{Addr: "127.0.0.1:0", Token: token, TLS: cfg})
	if err != nil {
		t.Fatal(err)
	}
	monitorv1.RegisterMonitorServiceServer(srv.GRPC(), monitorv1.UnimplementedMonitorServiceServer{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = srv.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return srv.Addr()
}

func callMonitor(t *testing.T, o genailab.Options) error {
	t.Helper()
	c, err := genailab.Dial(o)
	if err != nil {
		t.Fatalf("dial %+v: %v", o, err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = c.Monitor().GetUsage(ctx, &monitorv1.GetUsageRequest{})
	return err
}

func TestTokenAndTLS(t *testing.T) {
	l := newLab(t)
	addr := startTLSServer(t, l, "s3cret", false)
	passed := codes.Unimplemented // the call got through TLS and the token guard
	pool := x509.NewCertPool()
	pem, _ := os.ReadFile(l.ca)
	pool.AppendCertsFromPEM(pem)

	cases := []struct {
		name string
		o    genailab.Options
		want codes.Code
		msg  string
	}{
		{"CA file and token", genailab.Options{MonitorAddr: addr, CAFile: l.ca, Token: "s3cret"}, passed, ""},
		{"TLS config and token", genailab.Options{MonitorAddr: addr, TLS: &tls.Config{RootCAs: pool}, Token: "s3cret"}, passed, ""},
		{"no token", genailab.Options{MonitorAddr: addr, CAFile: l.ca}, codes.Unauthenticated, "missing bearer token"},
		{"wrong token", genailab.Options{MonitorAddr: addr, CAFile: l.ca, Token: "guess"}, codes.Unauthenticated, "wrong bearer token"},
		{"another CA", genailab.Options{MonitorAddr: addr, CAFile: l.otherCA, Token: "s3cret"}, codes.Unavailable, "certificate"},
		{"system roots", genailab.Options{MonitorAddr: addr, TLS: &tls.Config{}, Token: "s3cret"}, codes.Unavailable, "certificate"},
		{"plaintext to a TLS server", genailab.Options{MonitorAddr: addr, Token: "s3cret"}, codes.Unavailable, ""},
		{"server name checked", genailab.Options{MonitorAddr: addr, CAFile: l.ca, ServerName: "other.test", Token: "s3cret"}, codes.Unavailable, "certificate"},
		{"server name matches", genailab.Options{MonitorAddr: addr, CAFile: l.ca, ServerName: "genailab.test", Token: "s3cret"}, passed, ""},
	}
	for _, c := range cases {
		err := callMonitor(t, c.o)
		if status.Code(err) != c.want || !strings.Contains(status.Convert(err).Message(), c.msg) {
			t.Errorf("%s: %v, want %s containing %q", c.name, err, c.want, c.msg)
		}
	}
}

func TestMutualTLS(t *testing.T) {
	l := newLab(t)
	addr := startTLSServer(t, l, "", true)
	if err := callMonitor(t, genailab.Options{MonitorAddr: addr, CAFile: l.ca, CertFile: l.clientCert, KeyFile: l.clientKey}); status.Code(err) != codes.Unimplemented {
		t.Errorf("with the client certificate: %v, want to get through (Unimplemented)", err)
	}
	if err := callMonitor(t, genailab.Options{MonitorAddr: addr, CAFile: l.ca}); status.Code(err) != codes.Unavailable {
		t.Errorf("without a client certificate: %v, want Unavailable", err)
	}
}

func TestBadTLSOptions(t *testing.T) {
	l := newLab(t)
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		o    genailab.Options
		want string
	}{
		"missing CA file":        {genailab.Options{CAFile: filepath.Join(t.TempDir(), "nope.pem")}, "nope.pem"},
		"CA file without PEM":    {genailab.Options{CAFile: notPEM}, "no PEM certificate"},
		"cert without key":       {genailab.Options{CAFile: l.ca, CertFile: l.clientCert}, "both"},
		"cert without CA":        {genailab.Options{CertFile: l.clientCert, KeyFile: l.clientKey}, "CA file is required"},
		"config and files":       {genailab.Options{TLS: &tls.Config{}, CAFile: l.ca}, "not both"},
		"key is not a cert":      {genailab.Options{CAFile: l.ca, CertFile: l.clientKey, KeyFile: l.clientKey}, "certificate"},
		"server name without CA": {genailab.Options{ServerName: "x"}, "CA file is required"},
	} {
		if _, err := genailab.Dial(c.o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Dial error %v, want one containing %q", name, err, c.want)
		}
	}
}

func TestTokenInClearOnlyOnLoopback(t *testing.T) {
	for _, o := range []genailab.Options{{Token: "t"}, {Addr: "localhost", Token: "t"}, {Addr: "::1", Token: "t"},
		{Addr: "gpu1.lan", Token: "t", Insecure: true}, {Addr: "gpu1.lan"}} {
		c, err := genailab.Dial(o)
		if err != nil {
			t.Errorf("%+v: %v", o, err)
			continue
		}
		c.Close()
	}
	for _, o := range []genailab.Options{{Addr: "gpu1.lan", Token: "t"}, {MonitorAddr: "10.0.0.2:1", Token: "t"}} {
		if _, err := genailab.Dial(o); !errors.Is(err, genailab.ErrTokenInClear) {
			t.Errorf("%+v: %v, want ErrTokenInClear", o, err)
		}
	}
}

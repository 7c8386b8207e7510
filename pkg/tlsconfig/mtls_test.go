package tlsconfig_test

import (
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/genailab/genailab/pkg/auth"
	"github.com/genailab/genailab/pkg/tlsconfig"
	"github.com/genailab/genailab/pkg/tlsconfig/pki"
)

// mtlsServer starts a real gRPC server with mutual TLS (and token, when set) on loopback.
func mtlsServer(t *testing.T, l *lab, token string) (string, *logBuffer) {
	t.Helper()
	cert, key := l.issue(t, l.ca, "agent", pki.Request{DNSNames: []string{"localhost", "agent.lab"}, IPs: loopback})
	logs := &logBuffer{}
	cfg, err := tlsconfig.Server(cert, key, l.path("ca.crt"), tlsconfig.WithLogger(newLogger(logs)))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MinVersion != tls.VersionTLS13 {
		t.Fatalf("min version %x, want TLS 1.3", cfg.MinVersion)
	}
	return serve(t, cfg, token, logs), logs
}

func client(t *testing.T, l *lab, caFile, certFile, keyFile, serverName string) *tls.Config {
	t.Helper()
	cfg, err := tlsconfig.Client(caFile, certFile, keyFile, serverName)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// withRawCert makes cfg present a certificate whatever the server asks for and without
// any validity check, as a hostile client would (crypto/tls clients otherwise leave out a
// certificate whose issuer is not among the CAs the server's request lists).
func withRawCert(t *testing.T, cfg *tls.Config, certFile, keyFile string) *tls.Config {
	t.Helper()
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &c, nil }
	return cfg
}

func TestMutualTLS(t *testing.T) {
	l := newLab(t)
	addr, logs := mtlsServer(t, l, "")
	goodCert, goodKey := l.issue(t, l.ca, "orchestrator", pki.Request{Usage: pki.ClientUsage})
	otherCert, otherKey := l.issue(t, l.otherCA, "intruder", pki.Request{Usage: pki.ClientUsage})
	now := time.Now()
	oldCert, oldKey := l.issue(t, l.ca, "retired", pki.Request{Usage: pki.ClientUsage,
		NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-24 * time.Hour)})
	ca := l.path("ca.crt")

	t.Run("right client certificate", func(t *testing.T) {
		if err := ping(t, addr, client(t, l, ca, goodCert, goodKey, "")); err != nil {
			t.Fatalf("got %v, want OK", err)
		}
		logs.waitFor(t, "accepted TLS client", "CN=orchestrator")
	})
	t.Run("by IP and by a server-name override", func(t *testing.T) {
		port := addr[strings.LastIndex(addr, ":"):]
		if err := ping(t, "localhost"+port, client(t, l, ca, goodCert, goodKey, "")); err != nil {
			t.Fatalf("localhost: %v", err)
		}
		if err := ping(t, addr, client(t, l, ca, goodCert, goodKey, "agent.lab")); err != nil {
			t.Fatalf("agent.lab: %v", err)
		}
	})
	refused := []struct {
		name, reason string
		cfg          *tls.Config
	}{
		{"no client certificate", "no client certificate", client(t, l, ca, "", "", "")},
		{"certificate of another CA", "CN=intruder", withRawCert(t, client(t, l, ca, "", "", ""), otherCert, otherKey)},
		// Client refuses to load an expired certificate (see TestFileErrors), so this one
		// is put together by hand, as a client that does not check would.
		{"expired certificate", "expired", withRawCert(t, client(t, l, ca, "", "", ""), oldCert, oldKey)},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			err := ping(t, addr, c.cfg)
			if status.Code(err) != codes.Unavailable {
				t.Fatalf("got %v, want Unavailable", err)
			}
			logs.waitFor(t, "refused TLS client", "peer=127.0.0.1:", c.reason)
		})
	}
	t.Run("server certificate of another CA", func(t *testing.T) {
		err := ping(t, addr, client(t, l, l.path("other-ca.crt"), goodCert, goodKey, ""))
		if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("got %v, want Unavailable (unknown authority)", err)
		}
	})
	t.Run("wrong server name", func(t *testing.T) {
		err := ping(t, addr, client(t, l, ca, goodCert, goodKey, "someone-else.lab"))
		if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "someone-else.lab") {
			t.Fatalf("got %v, want Unavailable naming the server name", err)
		}
	})
	t.Run("TLS 1.2 client", func(t *testing.T) {
		cfg := client(t, l, ca, goodCert, goodKey, "")
		cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
		if err := ping(t, addr, cfg); status.Code(err) != codes.Unavailable {
			t.Fatalf("got %v, want Unavailable", err)
		}
	})
}

func TestTokenAndMutualTLS(t *testing.T) {
	const token = "tok-9f3c1e-very-secret"
	l := newLab(t)
	addr, logs := mtlsServer(t, l, token)
	cert, key := l.issue(t, l.ca, "gateway", pki.Request{Usage: pki.ClientUsage})
	ca := l.path("ca.crt")
	withToken := func(tok string) grpc.DialOption {
		return grpc.WithPerRPCCredentials(auth.TokenCredentials{Token: tok, Secure: true})
	}

	if err := ping(t, addr, client(t, l, ca, cert, key, ""), withToken(token)); err != nil {
		t.Fatalf("right certificate and token: %v", err)
	}
	err := ping(t, addr, client(t, l, ca, cert, key, ""), withToken("not-"+token))
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("wrong token: got %v, want Unauthenticated", err)
	}
	line := logs.waitFor(t, "refused unauthenticated call", "wrong bearer token")
	if err := ping(t, addr, client(t, l, ca, cert, key, "")); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("no token: got %v, want Unauthenticated", err)
	}
	logs.waitFor(t, "refused unauthenticated call", "missing bearer token")
	// The right token does not help without a certificate.
	if err := ping(t, addr, client(t, l, ca, "", "", ""), withToken(token)); status.Code(err) != codes.Unavailable {
		t.Fatalf("token without certificate: got %v, want Unavailable", err)
	}
	logs.waitFor(t, "refused TLS client", "no client certificate")

	all := logs.String()
	if strings.Contains(all, token) {
		t.Fatalf("the token leaked into the log:\n%s", all)
	}
	if strings.Contains(all, "PRIVATE KEY") {
		t.Fatalf("a key leaked into the log:\n%s", all)
	}
	if !strings.Contains(line, "peer=127.0.0.1:") {
		t.Errorf("refusal without the peer: %s", line)
	}
}

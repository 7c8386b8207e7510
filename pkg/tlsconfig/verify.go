package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"time"
)

// verifier requires and checks client certificates, logging every refusal.
type verifier struct {
	base  *tls.Config
	roots *x509.CertPool
	log   *slog.Logger
	now   func() time.Time
}

// forClient gives each connection a copy of the configuration whose VerifyConnection
// knows the peer's address, for the log.
func (v *verifier) forClient(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	peer := "unknown"
	if hello.Conn != nil && hello.Conn.RemoteAddr() != nil {
		peer = hello.Conn.RemoteAddr().String()
	}
	c := v.base.Clone()
	c.VerifyConnection = func(cs tls.ConnectionState) error { return v.verify(peer, cs) }
	return c, nil
}

// verify is crypto/tls's client-certificate verification (chain to the client CAs at the
// current time, client-auth key usage), plus the log.
func (v *verifier) verify(peer string, cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		v.log.Warn("refused TLS client", "peer", peer, "reason", "no client certificate")
		return ErrNoClientCert
	}
	leaf := cs.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots:         v.roots,
		Intermediates: inter,
		CurrentTime:   v.now(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		v.log.Warn("refused TLS client", "peer", peer, "subject", leaf.Subject.String(),
			"issuer", leaf.Issuer.String(), "reason", err.Error())
		return fmt.Errorf("tls: client certificate %q: %w", leaf.Subject.CommonName, err)
	}
	v.log.Debug("accepted TLS client", "peer", peer, "subject", leaf.Subject.String(), "resumed", cs.DidResume)
	return nil
}

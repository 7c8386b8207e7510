// Package tlsconfig loads the TLS configurations of genailab's services from PEM files:
// mutual TLS between the orchestrator (or gateway) and the host agents, TLS 1.3 only.
//
// Server configurations require a client certificate signed by the client CA. The check is
// done in VerifyConnection (the same x509 verification crypto/tls does for
// RequireAndVerifyClientCert: chain to the CA, validity period, client-auth key usage) so
// that every refused handshake is logged, with the peer's address and the reason, which
// crypto/tls alone would not report. Nothing secret is logged: only addresses, subjects and
// issuers of public certificates.
//
// A client refused during the handshake sees gRPC's Unavailable (the transport never comes
// up); a wrong bearer token over a good mTLS connection is Unauthenticated (pkg/auth).
package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"
)

// ErrNoClientCert is the handshake error for a client that sent no certificate.
var ErrNoClientCert = errors.New("tls: client certificate required")

// Option tunes a server configuration.
type Option func(*verifier)

// WithLogger sets where refused handshakes are logged (warn) and accepted ones (debug).
func WithLogger(log *slog.Logger) Option {
	return func(v *verifier) {
		if log != nil {
			v.log = log
		}
	}
}

// Server returns a TLS 1.3 server configuration with the certificate in certFile/keyFile
// that requires, from every client, a certificate signed by a CA in clientCAFile.
func Server(certFile, keyFile, clientCAFile string, opts ...Option) (*tls.Config, error) {
	if clientCAFile == "" {
		return nil, errors.New("tls server: client CA file not set")
	}
	cert, err := loadKeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls server: %w", err)
	}
	pool, err := loadPool(clientCAFile)
	if err != nil {
		return nil, fmt.Errorf("tls server: client CA: %w", err)
	}
	v := &verifier{roots: pool, log: slog.New(slog.DiscardHandler), now: time.Now}
	for _, o := range opts {
		o(v)
	}
	v.base = &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool, // advertised in the CertificateRequest, so clients pick the right certificate
		// Asked for, then required and verified in VerifyConnection (see the package doc).
		ClientAuth: tls.RequestClientCert,
	}
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		Certificates:       []tls.Certificate{cert},
		ClientCAs:          pool,
		ClientAuth:         tls.RequestClientCert,
		GetConfigForClient: v.forClient,
	}, nil
}

// ServerWithoutClientCerts returns a TLS 1.3 server configuration that asks for no client
// certificate: encryption and server identity only, for an HTTPS listener whose callers
// authenticate with a bearer token.
func ServerWithoutClientCerts(certFile, keyFile string) (*tls.Config, error) {
	cert, err := loadKeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls server: %w", err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}}, nil
}

// Client returns a TLS 1.3 client configuration that trusts the CAs in caFile and, when
// certFile and keyFile are set, presents that certificate. serverName overrides the name
// checked in the server's certificate; empty, gRPC checks the host of the address dialled.
func Client(caFile, certFile, keyFile, serverName string) (*tls.Config, error) {
	if caFile == "" {
		return nil, errors.New("tls client: CA file not set")
	}
	pool, err := loadPool(caFile)
	if err != nil {
		return nil, fmt.Errorf("tls client: CA: %w", err)
	}
	c := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: pool, ServerName: serverName}
	switch {
	case certFile != "" && keyFile != "":
		cert, err := loadKeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("tls client: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	case certFile != "" || keyFile != "":
		return nil, errors.New("tls client: a client certificate needs both its certificate and key files")
	}
	return c, nil
}

// loadKeyPair loads a certificate and its key, and refuses one that is not valid now.
func loadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	if certFile == "" || keyFile == "" {
		return tls.Certificate{}, errors.New("certificate and key files must both be set")
	}
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("read certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("read key: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("load certificate %s with key %s: %w", certFile, keyFile, err)
	}
	now := time.Now()
	if leaf := cert.Leaf; leaf != nil {
		if now.After(leaf.NotAfter) {
			return tls.Certificate{}, fmt.Errorf("certificate %s (%s) expired on %s", certFile, leaf.Subject.CommonName, leaf.NotAfter.UTC().Format(time.RFC3339))
		}
		if now.Before(leaf.NotBefore) {
			return tls.Certificate{}, fmt.Errorf("certificate %s (%s) is not valid before %s", certFile, leaf.Subject.CommonName, leaf.NotBefore.UTC().Format(time.RFC3339))
		}
	}
	return cert, nil
}

// loadPool reads every certificate of a PEM file; a file with none, or with anything that
// does not parse, is an error.
func loadPool(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	pool := x509.NewCertPool()
	n := 0
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%s: unexpected PEM block %q (want CERTIFICATE)", file, b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: certificate %d: %w", file, n+1, err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("%s: no PEM certificate found", file)
	}
	return pool, nil
}

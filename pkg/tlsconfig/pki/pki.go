// Package pki makes a small lab certificate authority and the certificates it signs:
// ECDSA P-256 keys, a CA that may sign leaf certificates only (path length 0), and leaf
// certificates for hosts (server and client use) or for callers (client use only).
//
// It is what genailab-certs runs, and what tests use to make real certificates (including
// expired ones and ones from another CA) for mTLS over real sockets.
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"
)

// Default validity periods.
const (
	DefaultCAValidity   = 10 * 365 * 24 * time.Hour
	DefaultLeafValidity = 397 * 24 * time.Hour
	// backdate covers clock skew between the machine that issues and the ones that verify.
	backdate = 5 * time.Minute
)

// Organization is the subject organization of every certificate made here.
const Organization = "genailab lab"

// Authority is a CA certificate with its private key.
type Authority struct {
	Cert    *x509.Certificate
	Key     *ecdsa.PrivateKey
	CertPEM []byte
}

// Issued is a signed leaf certificate with its private key, both PEM-encoded.
type Issued struct {
	Cert    *x509.Certificate
	CertPEM []byte
	KeyPEM  []byte
}

// Usage says what a leaf certificate may be used for.
type Usage int

const (
	// HostUsage is for services that listen (and may also dial): server and client auth.
	HostUsage Usage = iota
	// ClientUsage is for callers only: client auth.
	ClientUsage
)

// Request describes a leaf certificate.
type Request struct {
	// CommonName names the host or caller; required.
	CommonName string
	DNSNames   []string
	IPs        []net.IP
	Usage      Usage
	// NotBefore and NotAfter default to now-5m and now+DefaultLeafValidity.
	NotBefore, NotAfter time.Time
}

// NewCA makes a self-signed CA named commonName, valid from now-5m for validity
// (DefaultCAValidity when zero).
func NewCA(commonName string, validity time.Duration) (*Authority, error) {
	if commonName == "" {
		return nil, errors.New("new CA: empty common name")
	}
	if validity <= 0 {
		validity = DefaultCAValidity
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("new CA: generate key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, fmt.Errorf("new CA: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{Organization}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("new CA: sign: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("new CA: parse: %w", err)
	}
	return &Authority{Cert: cert, Key: key, CertPEM: encodeCert(der)}, nil
}

// Issue signs a leaf certificate for r with a fresh P-256 key.
func (a *Authority) Issue(r Request) (*Issued, error) {
	if r.CommonName == "" {
		return nil, errors.New("issue certificate: empty common name")
	}
	now := time.Now()
	if r.NotBefore.IsZero() {
		r.NotBefore = now.Add(-backdate)
	}
	if r.NotAfter.IsZero() {
		r.NotAfter = now.Add(DefaultLeafValidity)
	}
	if !r.NotAfter.After(r.NotBefore) {
		return nil, fmt.Errorf("issue certificate %s: not-after %s is not after not-before %s", r.CommonName, r.NotAfter, r.NotBefore)
	}
	var ext []x509.ExtKeyUsage
	switch r.Usage {
	case HostUsage:
		ext = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	case ClientUsage:
		ext = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	default:
		return nil, fmt.Errorf("issue certificate %s: unknown usage %d", r.CommonName, r.Usage)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("issue certificate %s: generate key: %w", r.CommonName, err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, fmt.Errorf("issue certificate %s: %w", r.CommonName, err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: r.CommonName, Organization: []string{Organization}},
		NotBefore:             r.NotBefore,
		NotAfter:              r.NotAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           ext,
		BasicConstraintsValid: true,
		DNSNames:              r.DNSNames,
		IPAddresses:           r.IPs,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.Cert, &key.PublicKey, a.Key)
	if err != nil {
		return nil, fmt.Errorf("issue certificate %s: sign: %w", r.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("issue certificate %s: parse: %w", r.CommonName, err)
	}
	keyPEM, err := EncodeKey(key)
	if err != nil {
		return nil, fmt.Errorf("issue certificate %s: %w", r.CommonName, err)
	}
	return &Issued{Cert: cert, CertPEM: encodeCert(der), KeyPEM: keyPEM}, nil
}

// KeyPEM returns the CA's private key, PEM-encoded (PKCS #8).
func (a *Authority) KeyPEM() ([]byte, error) { return EncodeKey(a.Key) }

// ParseAuthority reads a CA from its PEM certificate and key (as written by KeyPEM).
func ParseAuthority(certPEM, keyPEM []byte) (*Authority, error) {
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, errors.New("CA certificate: no PEM CERTIFICATE block")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("CA certificate %q is not a CA", cert.Subject.CommonName)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil || kb.Type != "PRIVATE KEY" {
		return nil, errors.New("CA key: no PEM PRIVATE KEY block")
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("CA key: %T is not an ECDSA key", k)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, errors.New("CA key does not match the CA certificate")
	}
	return &Authority{Cert: cert, Key: key, CertPEM: certPEM}, nil
}

// EncodeKey PEM-encodes a private key as PKCS #8.
func EncodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func newSerial() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	return serial, nil
}

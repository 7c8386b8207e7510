package pki_test

import (
	"bytes"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/genailab/genailab/pkg/tlsconfig/pki"
)

func TestAuthorityRoundTripAndIssue(t *testing.T) {
	ca, err := pki.NewCA("lab", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ca.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	back, err := pki.ParseAuthority(ca.CertPEM, key)
	if err != nil {
		t.Fatal(err)
	}
	is, err := back.Issue(pki.Request{CommonName: "h1", DNSNames: []string{"h1.lab"}})
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	if _, err := is.Cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: "h1.lab"}); err != nil {
		t.Fatalf("issued by the parsed CA, verified by the original: %v", err)
	}
	// A leaf cannot sign: the CA has path length 0 and the leaf is no CA.
	if is.Cert.IsCA || !ca.Cert.MaxPathLenZero {
		t.Error("path constraints")
	}
	if _, err := pki.ParseAuthority(is.CertPEM, is.KeyPEM); err == nil || !strings.Contains(err.Error(), "not a CA") {
		t.Errorf("leaf as CA: %v", err)
	}
	other, _ := pki.NewCA("other", time.Hour)
	otherKey, _ := other.KeyPEM()
	if _, err := pki.ParseAuthority(ca.CertPEM, otherKey); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("mismatched key: %v", err)
	}
	if _, err := pki.ParseAuthority(key, key); err == nil {
		t.Error("key as certificate accepted")
	}
	now := time.Now()
	if _, err := ca.Issue(pki.Request{CommonName: "x", NotBefore: now, NotAfter: now.Add(-time.Second)}); err == nil {
		t.Error("inverted validity accepted")
	}
	if _, err := ca.Issue(pki.Request{}); err == nil {
		t.Error("empty name accepted")
	}
}

func TestWriteFiles(t *testing.T) {
	dir := t.TempDir()
	crt, key := filepath.Join(dir, "a.crt"), filepath.Join(dir, "a.key")
	files := []pki.File{{Path: crt, Data: []byte("cert"), Mode: 0o644}, {Path: key, Data: []byte("key"), Mode: 0o600}}
	if err := pki.WriteFiles(files, false); err != nil {
		t.Fatal(err)
	}
	for p, m := range map[string]os.FileMode{crt: 0o644, key: 0o600} {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm() != m {
			t.Fatalf("%s: %v %v", p, fi.Mode(), err)
		}
	}
	// Only the key exists: nothing is written, not even the certificate.
	if err := os.Remove(crt); err != nil {
		t.Fatal(err)
	}
	files[1].Data = []byte("new key")
	if err := pki.WriteFiles(files, false); !errors.Is(err, pki.ErrExists) {
		t.Fatalf("got %v, want ErrExists", err)
	}
	if _, err := os.Stat(crt); err == nil {
		t.Fatal("a refused write created a file")
	}
	if got, _ := os.ReadFile(key); !bytes.Equal(got, []byte("key")) {
		t.Fatalf("key replaced: %q", got)
	}
	if err := pki.WriteFiles(files, true); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(key); !bytes.Equal(got, []byte("new key")) {
		t.Fatalf("forced write: %q", got)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Fatalf("temporary files left: %v", entries)
	}
}

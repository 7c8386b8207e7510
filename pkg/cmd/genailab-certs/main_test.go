package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/genailab/genailab/pkg/tlsconfig"
	"github.com/genailab/genailab/pkg/tlsconfig/pki"
)

func certs(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(args, &out, &errOut)
	return out.String() + errOut.String(), err
}

func mustCerts(t *testing.T, args ...string) string {
	t.Helper()
	out, err := certs(t, args...)
	if err != nil {
		t.Fatalf("genailab-certs %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func mode(t *testing.T, p string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func readCert(t *testing.T, p string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatalf("%s: no PEM", p)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestLabQuickStart(t *testing.T) {
	dir := t.TempDir()
	caDir, hostDir, clientDir := filepath.Join(dir, "ca"), filepath.Join(dir, "host1"), filepath.Join(dir, "orch")
	mustCerts(t, "ca", "-out", caDir)
	out := mustCerts(t, "host", "-ca", caDir, "-name", "host1", "-dns", "host1,host1.lab", "-ip", "10.0.0.5,127.0.0.1", "-out", hostDir)
	if !strings.Contains(out, "host1.lab") || !strings.Contains(out, "10.0.0.5") || !strings.Contains(out, "sha256:") {
		t.Errorf("summary: %s", out)
	}
	mustCerts(t, "client", "-ca", caDir, "-name", "orchestrator", "-days", "30", "-out", clientDir)

	for p, want := range map[string]os.FileMode{
		filepath.Join(caDir, "ca.key"): 0o600, filepath.Join(caDir, "ca.crt"): 0o644,
		filepath.Join(hostDir, "host1.key"): 0o600, filepath.Join(hostDir, "host1.crt"): 0o644, filepath.Join(hostDir, "ca.crt"): 0o644,
		filepath.Join(clientDir, "orchestrator.key"): 0o600, filepath.Join(clientDir, "orchestrator.crt"): 0o644,
		hostDir: 0o700,
	} {
		if got := mode(t, p); got != want {
			t.Errorf("%s: mode %o, want %o", p, got, want)
		}
	}
	entries, _ := os.ReadDir(hostDir)
	if len(entries) != 3 {
		t.Errorf("host dir holds %d entries (temporary files left?)", len(entries))
	}

	ca := readCert(t, filepath.Join(caDir, "ca.crt"))
	if !ca.IsCA || !ca.MaxPathLenZero || ca.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("CA constraints: IsCA %v, MaxPathLenZero %v, usage %v", ca.IsCA, ca.MaxPathLenZero, ca.KeyUsage)
	}
	host := readCert(t, filepath.Join(hostDir, "host1.crt"))
	client := readCert(t, filepath.Join(clientDir, "orchestrator.crt"))
	for _, c := range []*x509.Certificate{ca, host, client} {
		pub, ok := c.PublicKey.(*ecdsa.PublicKey)
		if !ok || pub.Curve != elliptic.P256() {
			t.Errorf("%s: key %T, want ECDSA P-256", c.Subject.CommonName, c.PublicKey)
		}
	}
	if got := strings.Join(host.DNSNames, ","); got != "host1,host1.lab" || len(host.IPAddresses) != 2 {
		t.Errorf("host SANs: %v %v", host.DNSNames, host.IPAddresses)
	}
	if d := time.Until(client.NotAfter); d < 29*24*time.Hour || d > 31*24*time.Hour {
		t.Errorf("client validity: %v, want 30 days", d)
	}
	if d := time.Until(host.NotAfter); d < 396*24*time.Hour || d > 398*24*time.Hour {
		t.Errorf("host validity: %v, want the 397-day default", d)
	}
	if len(client.ExtKeyUsage) != 1 || client.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
		t.Errorf("client usage: %v", client.ExtKeyUsage)
	}

	// The files work for mutual TLS: the host serves, the client dials it by IP and by name.
	srvCfg, err := tlsconfig.Server(filepath.Join(hostDir, "host1.crt"), filepath.Join(hostDir, "host1.key"), filepath.Join(hostDir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	lis, err := tls.Listen("tcp", "127.0.0.1:0", srvCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	for _, name := range []string{"", "host1.lab"} {
		cliCfg, err := tlsconfig.Client(filepath.Join(clientDir, "ca.crt"), filepath.Join(clientDir, "orchestrator.crt"), filepath.Join(clientDir, "orchestrator.key"), name)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := tls.Dial("tcp", lis.Addr().String(), cliCfg)
		if err != nil {
			t.Fatalf("dial (server name %q): %v", name, err)
		}
		if _, err := conn.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "ping" {
			t.Fatalf("echo over mutual TLS: %q %v", buf, err)
		}
		if st := conn.ConnectionState(); st.Version != tls.VersionTLS13 {
			t.Errorf("version %x", st.Version)
		}
		conn.Close()
	}
	// Usages, checked the way crypto/tls checks them: a host serves and dials, a client only dials.
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	verify := func(c *x509.Certificate, u x509.ExtKeyUsage) error {
		_, err := c.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{u}})
		return err
	}
	if verify(host, x509.ExtKeyUsageServerAuth) != nil || verify(host, x509.ExtKeyUsageClientAuth) != nil || verify(client, x509.ExtKeyUsageClientAuth) != nil {
		t.Error("a host certificate must serve and dial, a client certificate dial")
	}
	if err := verify(client, x509.ExtKeyUsageServerAuth); err == nil || !strings.Contains(err.Error(), "key usage") {
		t.Errorf("a client certificate may serve: %v", err)
	}
}

func TestNoOverwriteWithoutForce(t *testing.T) {
	dir := t.TempDir()
	caDir, hostDir := filepath.Join(dir, "ca"), filepath.Join(dir, "h")
	mustCerts(t, "ca", "-out", caDir)
	caKey, _ := os.ReadFile(filepath.Join(caDir, "ca.key"))
	if _, err := certs(t, "ca", "-out", caDir); !errors.Is(err, pki.ErrExists) {
		t.Fatalf("second ca: got %v, want ErrExists", err)
	}
	if now, _ := os.ReadFile(filepath.Join(caDir, "ca.key")); !bytes.Equal(now, caKey) {
		t.Fatal("the CA key was replaced")
	}
	mustCerts(t, "host", "-ca", caDir, "-name", "h1", "-out", hostDir)
	first, _ := os.ReadFile(filepath.Join(hostDir, "h1.crt"))
	if _, err := certs(t, "host", "-ca", caDir, "-name", "h1", "-out", hostDir); !errors.Is(err, pki.ErrExists) {
		t.Fatalf("second host: got %v, want ErrExists", err)
	}
	// Another host into the same directory is fine: ca.crt is the same one.
	mustCerts(t, "host", "-ca", caDir, "-name", "h2", "-out", hostDir)
	mustCerts(t, "host", "-ca", caDir, "-name", "h1", "-out", hostDir, "-force")
	if again, _ := os.ReadFile(filepath.Join(hostDir, "h1.crt")); bytes.Equal(again, first) {
		t.Fatal("-force did not replace the certificate")
	}
	if got := mode(t, filepath.Join(hostDir, "h1.key")); got != 0o600 {
		t.Errorf("replaced key mode %o", got)
	}
	// A new CA: its certificates do not go into a directory holding the old ca.crt.
	mustCerts(t, "ca", "-out", caDir, "-force")
	if _, err := certs(t, "host", "-ca", caDir, "-name", "h3", "-out", hostDir); !errors.Is(err, pki.ErrExists) || !strings.Contains(err.Error(), "another CA") {
		t.Fatalf("host of a new CA next to the old ca.crt: got %v", err)
	}
	if _, err := os.Stat(filepath.Join(hostDir, "h3.key")); err == nil {
		t.Fatal("a refused run left a key behind")
	}
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	caDir := filepath.Join(dir, "ca")
	mustCerts(t, "ca", "-out", caDir)
	cases := map[string][]string{
		"no command":        nil,
		"unknown command":   {"server"},
		"ca without -out":   {"ca"},
		"stray argument":    {"ca", "-out", dir, "extra"},
		"zero days":         {"ca", "-out", filepath.Join(dir, "x"), "-days", "0"},
		"escaping name":     {"host", "-ca", caDir, "-name", "../evil", "-out", dir},
		"slash in name":     {"client", "-ca", caDir, "-name", "a/b", "-out", dir},
		"name ca":           {"client", "-ca", caDir, "-name", "ca", "-out", dir},
		"dotdot name":       {"client", "-ca", caDir, "-name", "a..b", "-out", dir},
		"bad IP":            {"host", "-ca", caDir, "-name", "h", "-ip", "10.0.0.300", "-out", dir},
		"bad DNS":           {"host", "-ca", caDir, "-name", "h", "-dns", "h_1.lab", "-out", dir},
		"missing CA":        {"host", "-ca", filepath.Join(dir, "none"), "-name", "h", "-out", dir},
		"longer than CA":    {"client", "-ca", caDir, "-name", "c", "-days", "4000", "-out", dir},
		"dns on a client":   {"client", "-ca", caDir, "-name", "c", "-dns", "c.lab", "-out", dir},
		"host without -ca":  {"host", "-name", "h", "-out", dir},
		"host without name": {"host", "-ca", caDir, "-out", dir},
	}
	for name, args := range cases {
		if out, err := certs(t, args...); err == nil {
			t.Errorf("%s: no error\n%s", name, out)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("refused runs wrote into %s: %v", dir, entries)
	}
	// A key that does not belong to the CA certificate.
	other := filepath.Join(dir, "other")
	mustCerts(t, "ca", "-out", other)
	key, _ := os.ReadFile(filepath.Join(other, "ca.key"))
	if err := os.WriteFile(filepath.Join(caDir, "ca.key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := certs(t, "host", "-ca", caDir, "-name", "h", "-out", filepath.Join(dir, "h")); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("mismatched CA key: %v", err)
	}
}

func TestHelp(t *testing.T) {
	out, err := certs(t, "help")
	if err != nil || !strings.Contains(out, "genailab-certs host") {
		t.Fatalf("%v %s", err, out)
	}
}

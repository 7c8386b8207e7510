package main

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/genailab/genailab/pkg/tlsconfig/pki"
)

var (
	nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)
	dnsRE  = regexp.MustCompile(`^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$`)
)

// checkName keeps a name usable as a file name inside -out, and nothing else.
func checkName(name string) error {
	if !nameRE.MatchString(name) || strings.Contains(name, "..") || name == "ca" {
		return fmt.Errorf("invalid -name %q: use letters, digits, '.', '_' and '-' (up to 63, not \"ca\")", name)
	}
	return nil
}

func parseDNS(list string) ([]string, error) {
	var out []string
	for _, d := range strings.Split(list, ",") {
		d = strings.TrimSpace(d)
		if d == "" {
			continue
		}
		if len(d) > 253 || !dnsRE.MatchString(d) {
			return nil, fmt.Errorf("invalid DNS name %q", d)
		}
		out = append(out, d)
	}
	return out, nil
}

func parseIPs(list string) ([]net.IP, error) {
	var out []net.IP
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		ip := net.ParseIP(s)
		if ip == nil {
			return nil, fmt.Errorf("invalid IP address %q", s)
		}
		out = append(out, ip)
	}
	return out, nil
}

func validityDays(days int) (time.Duration, error) {
	if days < 1 || days > 100*365 {
		return 0, fmt.Errorf("-days must be between 1 and %d, got %d", 100*365, days)
	}
	return time.Duration(days) * 24 * time.Hour, nil
}

// paths names the files of a directory.
type paths struct{ dir, caCert, caKey string }

func newPaths(dir string) paths {
	return paths{dir: dir, caCert: filepath.Join(dir, "ca.crt"), caKey: filepath.Join(dir, "ca.key")}
}

func (p paths) cert(name string) string { return filepath.Join(p.dir, name+".crt") }
func (p paths) key(name string) string  { return filepath.Join(p.dir, name+".key") }

func loadCA(p paths) (*pki.Authority, error) {
	cert, err := os.ReadFile(p.caCert)
	if err != nil {
		return nil, fmt.Errorf("read CA: %w", err)
	}
	key, err := os.ReadFile(p.caKey)
	if err != nil {
		return nil, fmt.Errorf("read CA key: %w", err)
	}
	ca, err := pki.ParseAuthority(cert, key)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.dir, err)
	}
	return ca, nil
}

func describe(w io.Writer, c *x509.Certificate) {
	sum := sha256.Sum256(c.Raw)
	fmt.Fprintf(w, "  subject:   %s\n", c.Subject)
	fmt.Fprintf(w, "  issuer:    %s\n", c.Issuer)
	if len(c.DNSNames) > 0 {
		fmt.Fprintf(w, "  dns:       %s\n", strings.Join(c.DNSNames, ", "))
	}
	if len(c.IPAddresses) > 0 {
		ips := make([]string, len(c.IPAddresses))
		for i, ip := range c.IPAddresses {
			ips[i] = ip.String()
		}
		fmt.Fprintf(w, "  ip:        %s\n", strings.Join(ips, ", "))
	}
	fmt.Fprintf(w, "  not after: %s\n", c.NotAfter.UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "  sha256:    %s\n", hex.EncodeToString(sum[:]))
}

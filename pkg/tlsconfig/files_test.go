package tlsconfig_test

import (
	"errors"
	"flag"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/genailab/genailab/pkg/tlsconfig"
	"github.com/genailab/genailab/pkg/tlsconfig/pki"
)

func TestFileErrors(t *testing.T) {
	l := newLab(t)
	cert, key := l.issue(t, l.ca, "agent", pki.Request{IPs: loopback})
	otherCert, _ := l.issue(t, l.ca, "other", pki.Request{IPs: loopback})
	now := time.Now()
	oldCert, oldKey := l.issue(t, l.ca, "old", pki.Request{NotBefore: now.Add(-2 * time.Hour), NotAfter: now.Add(-time.Hour)})
	futureCert, futureKey := l.issue(t, l.ca, "future", pki.Request{NotBefore: now.Add(time.Hour), NotAfter: now.Add(2 * time.Hour)})
	garbage := l.write(t, "garbage.pem", []byte("not PEM at all\n"))
	keyAsCA := l.write(t, "key-as-ca.pem", readFile(t, key))
	badDER := l.write(t, "bad-der.pem", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	missing := l.path("missing.pem")
	ca := l.path("ca.crt")

	cases := []struct {
		name string
		err  func() error
		want string
	}{
		{"missing certificate", func() error { _, err := tlsconfig.Server(missing, key, ca); return err }, "missing.pem"},
		{"missing key", func() error { _, err := tlsconfig.Server(cert, missing, ca); return err }, "missing.pem"},
		{"missing client CA", func() error { _, err := tlsconfig.Server(cert, key, missing); return err }, "client CA"},
		{"empty client CA", func() error { _, err := tlsconfig.Server(cert, key, ""); return err }, "client CA file not set"},
		{"missing CA", func() error { _, err := tlsconfig.Client(missing, "", "", ""); return err }, "missing.pem"},
		{"empty CA", func() error { _, err := tlsconfig.Client("", cert, key, ""); return err }, "CA file not set"},
		{"CA without PEM", func() error { _, err := tlsconfig.Client(garbage, "", "", ""); return err }, "no PEM certificate found"},
		{"key as CA", func() error { _, err := tlsconfig.Client(keyAsCA, "", "", ""); return err }, `unexpected PEM block "PRIVATE KEY"`},
		{"broken certificate in CA", func() error { _, err := tlsconfig.Client(badDER, "", "", ""); return err }, "certificate 1"},
		{"key of another certificate", func() error { _, err := tlsconfig.Server(otherCert, key, ca); return err }, "does not match"},
		{"certificate as key", func() error { _, err := tlsconfig.Server(cert, cert, ca); return err }, "load certificate"},
		{"expired certificate", func() error { _, err := tlsconfig.Server(oldCert, oldKey, ca); return err }, "expired on"},
		{"certificate not valid yet", func() error { _, err := tlsconfig.Client(ca, futureCert, futureKey, ""); return err }, "not valid before"},
		{"client certificate without key", func() error { _, err := tlsconfig.Client(ca, cert, "", ""); return err }, "both"},
		{"one-way server with a missing key", func() error { _, err := tlsconfig.ServerWithoutClientCerts(cert, missing); return err }, "missing.pem"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.err()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
	if _, err := tlsconfig.Server(missing, key, ca); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing file should wrap fs.ErrNotExist: %v", err)
	}
}

func TestFlags(t *testing.T) {
	l := newLab(t)
	cert, key := l.issue(t, l.ca, "agent", pki.Request{IPs: loopback})
	ca := l.path("ca.crt")

	parse := func(args ...string) (tlsconfig.ServerFlags, tlsconfig.ClientFlags) {
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		var s tlsconfig.ServerFlags
		var c tlsconfig.ClientFlags
		s.Register(fs)
		c.Register(fs, "agents")
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		return s, c
	}

	s, c := parse()
	if cfg, err := s.Config(nil); cfg != nil || err != nil {
		t.Fatalf("no server flags: %v %v, want plain TCP", cfg, err)
	}
	if cfg, err := c.Config(); cfg != nil || err != nil {
		t.Fatalf("no client flags: %v %v, want plain TCP", cfg, err)
	}

	s, _ = parse("-tls-cert", cert, "-tls-key", key, "-tls-client-ca", ca)
	cfg, err := s.Config(nil)
	if err != nil || cfg.GetConfigForClient == nil {
		t.Fatalf("mutual TLS: %v %v", cfg, err)
	}
	s, _ = parse("-tls-cert", cert, "-tls-key", key)
	if cfg, err := s.Config(nil); err != nil || cfg.GetConfigForClient != nil || len(cfg.Certificates) != 1 {
		t.Fatalf("server-only TLS: %v %v", cfg, err)
	}
	for _, args := range [][]string{{"-tls-cert", cert}, {"-tls-key", key}, {"-tls-client-ca", ca}, {"-tls-key", key, "-tls-client-ca", ca}} {
		s, _ = parse(args...)
		if _, err := s.Config(nil); err == nil || !strings.Contains(err.Error(), "-tls-cert and -tls-key") {
			t.Errorf("%v: got %v", args, err)
		}
	}

	_, c = parse("-tls-ca", ca, "-tls-client-cert", cert, "-tls-client-key", key, "-tls-server-name", "agent.lab")
	cc, err := c.Config()
	if err != nil || cc.ServerName != "agent.lab" || len(cc.Certificates) != 1 || cc.RootCAs == nil {
		t.Fatalf("client: %+v %v", cc, err)
	}
	_, c = parse("-tls-client-cert", cert, "-tls-client-key", key)
	if _, err := c.Config(); err == nil || !strings.Contains(err.Error(), "-tls-ca is required") {
		t.Errorf("client certificate without CA: got %v", err)
	}
	if tlsconfig.TransportCredentials(nil).Info().SecurityProtocol != "insecure" ||
		tlsconfig.TransportCredentials(cc).Info().SecurityProtocol != "tls" {
		t.Error("TransportCredentials: wrong protocol")
	}
}

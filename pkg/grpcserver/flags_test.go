package grpcserver_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/genailab/genailab/pkg/auth"
	"github.com/genailab/genailab/pkg/config"
	"github.com/genailab/genailab/pkg/grpcserver"
	"github.com/genailab/genailab/pkg/tlsconfig/pki"
)

// parseFlags registers Flags on a fresh flag set and fills it as a service command does
// (pkg/config: flags, then GENAILAB_TEST_* environment, then the YAML file).
func parseFlags(t *testing.T, args ...string) (grpcserver.Flags, error) {
	t.Helper()
	var f grpcserver.Flags
	fs := flag.NewFlagSet("genailab-test", flag.ContinueOnError)
	f.Register(fs, "127.0.0.1:50099", "bearer token required from callers")
	return f, config.Parse(fs, args, "GENAILAB_TEST_")
}

// The shared block keeps the flag names the services always had, with flags over the
// environment over the YAML file.
func TestFlagsNamesAndPrecedence(t *testing.T) {
	var names []string
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	new(grpcserver.Flags).Register(fs, "127.0.0.1:1", "token")
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	if got := strings.Join(names, " "); got != "addr-file grpc-addr health-addr tls-cert tls-client-ca tls-key token token-file" {
		t.Fatalf("flags: %s", got)
	}

	f, err := parseFlags(t)
	if err != nil || f.Addr != "127.0.0.1:50099" || f.HealthAddr != "" || f.AddrFile != "" || f.Token != "" {
		t.Fatalf("defaults: %+v, %v", f, err)
	}

	dir := t.TempDir()
	yaml := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(yaml, []byte("grpc-addr: 127.0.0.1:3\nhealth_addr: 127.0.0.1:4\naddr-file: /y/addr\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GENAILAB_TEST_HEALTH_ADDR", "127.0.0.1:5")
	t.Setenv("GENAILAB_TEST_ADDR_FILE", "/env/addr")
	f, err = parseFlags(t, "-config", yaml, "-addr-file", "/flag/addr")
	if err != nil {
		t.Fatal(err)
	}
	if f.Addr != "127.0.0.1:3" || f.HealthAddr != "127.0.0.1:5" || f.AddrFile != "/flag/addr" {
		t.Errorf("YAML < env < flag: %+v", f)
	}

	if err := os.WriteFile(yaml, []byte("grpc-adr: 127.0.0.1:3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := parseFlags(t, "-config", yaml); err == nil || !strings.Contains(err.Error(), "unknown keys: grpc-adr") {
		t.Errorf("a misspelt YAML key: %v", err)
	}
}

func TestFlagsToken(t *testing.T) {
	file := filepath.Join(t.TempDir(), "token")
	if err := auth.WriteTokenFile(file, "s3cret"); err != nil {
		t.Fatal(err)
	}
	f, err := parseFlags(t, "-token-file", file)
	if err != nil || f.Token != "s3cret" {
		t.Fatalf("-token-file: %q, %v", f.Token, err)
	}
	t.Setenv("GENAILAB_TEST_TOKEN", "from-env")
	if f, err = parseFlags(t); err != nil || f.Token != "from-env" {
		t.Fatalf("GENAILAB_TEST_TOKEN: %q, %v", f.Token, err)
	}
	o, err := f.Options("", nil)
	if err != nil || o.Token != "from-env" {
		t.Fatalf("Options: %+v, %v", o, err)
	}
}

func TestFlagsOptions(t *testing.T) {
	f := grpcserver.Flags{HealthAddr: "127.0.0.1:7", AddrFile: "/a"}
	o, err := f.Options("127.0.0.1:50099", nil)
	if err != nil || o.Addr != "127.0.0.1:50099" || o.HealthAddr != "127.0.0.1:7" || o.AddrFile != "/a" || o.TLS != nil {
		t.Fatalf("no TLS, default address: %+v, %v", o, err)
	}

	dir := t.TempDir()
	ca, err := pki.NewCA("test CA", 0)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(pki.Request{CommonName: "localhost", DNSNames: []string{"localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	f.TLS.Cert, f.TLS.Key = write("host.crt", leaf.CertPEM), write("host.key", leaf.KeyPEM)
	if o, err = f.Options("", nil); err != nil || o.TLS == nil || grpcserver.ClientCertsRequired(o.TLS) {
		t.Fatalf("server TLS: %+v, %v", o.TLS, err)
	}
	f.TLS.ClientCA = write("ca.crt", ca.CertPEM)
	if o, err = f.Options("", nil); err != nil || !grpcserver.ClientCertsRequired(o.TLS) {
		t.Fatalf("mutual TLS: %v", err)
	}
	f.TLS.Key = ""
	if _, err := f.Options("", nil); err == nil {
		t.Fatal("-tls-cert without -tls-key must fail")
	}
}

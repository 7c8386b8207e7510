package config_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/genailab/genailab/pkg/config"
)

func newFlags() (*flag.FlagSet, *string, *int, *bool) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	addr := fs.String("grpc-addr", "127.0.0.1:50051", "")
	port := fs.Int("http-port", 8081, "")
	demo := fs.Bool("demo-engines", false, "")
	return fs, addr, port, demo
}

func TestPrecedenceFlagEnvYAMLDefault(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(file, []byte("grpc-addr: 10.0.0.1:1\nhttp_port: 9000\ndemo-engines: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GENAILAB_T_HTTP_PORT", "9100")
	fs, addr, port, demo := newFlags()
	if err := config.Parse(fs, []string{"-config", file, "-grpc-addr", "127.0.0.1:7"}, "GENAILAB_T_"); err != nil {
		t.Fatal(err)
	}
	if *addr != "127.0.0.1:7" {
		t.Errorf("flag must win: %q", *addr)
	}
	if *port != 9100 {
		t.Errorf("env must beat YAML: %d", *port)
	}
	if !*demo {
		t.Errorf("YAML must beat default")
	}
}

func TestDefaultsWithoutSources(t *testing.T) {
	fs, addr, port, _ := newFlags()
	if err := config.Parse(fs, nil, "GENAILAB_NONE_"); err != nil {
		t.Fatal(err)
	}
	if *addr != "127.0.0.1:50051" || *port != 8081 {
		t.Fatalf("defaults changed: %q %d", *addr, *port)
	}
}

func TestConfigFileFromEnv(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(file, []byte("http-port: 1234\n"), 0o600)
	t.Setenv("GENAILAB_E_CONFIG", file)
	fs, _, port, _ := newFlags()
	if err := config.Parse(fs, nil, "GENAILAB_E_"); err != nil {
		t.Fatal(err)
	}
	if *port != 1234 {
		t.Fatalf("port %d", *port)
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	typo := filepath.Join(dir, "typo.yaml")
	os.WriteFile(typo, []byte("grpc-adr: x\n"), 0o600)
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("http-port: lots\n"), 0o600)
	cases := map[string]struct {
		args []string
		env  map[string]string
		want string
	}{
		"unknown key":      {[]string{"-config", typo}, nil, "unknown keys: grpc-adr"},
		"bad YAML value":   {[]string{"-config", bad}, nil, "key http-port"},
		"bad env value":    {nil, map[string]string{"GENAILAB_X_HTTP_PORT": "x"}, "env GENAILAB_X_HTTP_PORT"},
		"missing file":     {[]string{"-config", filepath.Join(dir, "nope.yaml")}, nil, "read config"},
		"stray positional": {[]string{"oops"}, nil, "unexpected arguments"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			fs, _, _, _ := newFlags()
			err := config.Parse(fs, c.args, "GENAILAB_X_")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to contain %q", err, c.want)
			}
		})
	}
}

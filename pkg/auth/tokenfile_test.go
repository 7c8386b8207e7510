package auth_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/genailab/genailab/pkg/auth"
)

func TestTokenFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "token")
	if err := auth.WriteTokenFile(p, "s3cret"); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v", st.Mode(), err)
	}
	if tok, err := auth.ReadTokenFile(p); err != nil || tok != "s3cret" {
		t.Fatalf("read %q, %v", tok, err)
	}
	for name, c := range map[string]struct {
		content string
		mode    os.FileMode
		want    string
	}{
		"world readable": {"tok\n", 0o644, "chmod 600"},
		"empty":          {"\n\n", 0o600, "empty"},
		"two lines":      {"a\nb\n", 0o600, "one token on one line"},
		"too large":      {strings.Repeat("x", auth.MaxTokenFileBytes+1), 0o600, "larger than"},
	} {
		f := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
		if err := os.WriteFile(f, []byte(c.content), c.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(f, c.mode); err != nil {
			t.Fatal(err)
		}
		if _, err := auth.ReadTokenFile(f); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error containing %q", name, err, c.want)
		}
	}
	if _, err := auth.ReadTokenFile(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing file accepted")
	}
}

func TestTokenFlags(t *testing.T) {
	p := filepath.Join(t.TempDir(), "token")
	if err := auth.WriteTokenFile(p, "from-file"); err != nil {
		t.Fatal(err)
	}
	parse := func(args ...string) (string, error) {
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		fs.SetOutput(&bytes.Buffer{})
		var tok string
		auth.TokenFlags(fs, &tok, "token", "bearer token")
		err := fs.Parse(args)
		return tok, err
	}
	for _, c := range []struct {
		args    []string
		want    string
		wantErr string
	}{
		{nil, "", ""},
		{[]string{"-token", "on-cmdline"}, "on-cmdline", ""},
		{[]string{"-token-file", p}, "from-file", ""},
		{[]string{"-token", "x", "-token-file", p}, "", "not both"},
		{[]string{"-token-file", p, "-token", "x"}, "", "not both"},
		{[]string{"-token-file", p + ".missing"}, "", "no such file"},
	} {
		tok, err := parse(c.args...)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%q: %v, want %q", c.args, err, c.wantErr)
			}
			continue
		}
		if err != nil || tok != c.want {
			t.Errorf("%q: %q, %v; want %q", c.args, tok, err, c.want)
		}
	}
	// The usage never shows a token.
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	var out bytes.Buffer
	fs.SetOutput(&out)
	tok := "default-secret"
	auth.TokenFlags(fs, &tok, "token", "bearer token")
	fs.PrintDefaults()
	if strings.Contains(out.String(), "default-secret") || !strings.Contains(out.String(), "-token-file") {
		t.Fatalf("usage:\n%s", out.String())
	}
}

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

// secretVolume lays out dir as the kubelet writes a Secret volume (its atomic writer):
// the files in a timestamped directory, "..data" a symlink to it, and each key a symlink
// to "..data/<key>". The files get mode.
func secretVolume(t *testing.T, dir string, mode os.FileMode, keys map[string]string) {
	t.Helper()
	ts := filepath.Join(dir, "..2026_12_01_23_00_00.123456789")
	if err := os.Mkdir(ts, 0o755); err != nil {
		t.Fatal(err)
	}
	for k, v := range keys {
		f := filepath.Join(ts, k)
		if err := os.WriteFile(f, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(f, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join("..data", k), filepath.Join(dir, k)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Base(ts), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
}

// The Kubernetes leftover of issue 14: deploy/ passed the tokens in the environment
// because the strict mode check was thought to refuse Secret volumes. What a Secret
// volume really gives — a symlink into ..data, a root-owned file, mode 0400, or 0440 when
// the pod has an fsGroup — is accepted; the Secret's default mode 0644 is refused, with
// the defaultMode to set, and so is a world-readable file behind the links.
func TestTokenFileFromASecretVolume(t *testing.T) {
	for _, c := range []struct {
		mode os.FileMode
		ok   bool
	}{{0o400, true}, {0o440, true}, {0o600, true}, {0o644, false}, {0o444, false}, {0o404, false}} {
		dir := t.TempDir()
		secretVolume(t, dir, c.mode, map[string]string{"lab-token": "lab-s3cret", "api-token": "api-s3cret\n"})
		for key, want := range map[string]string{"lab-token": "lab-s3cret", "api-token": "api-s3cret"} {
			tok, err := auth.ReadTokenFile(filepath.Join(dir, key))
			switch {
			case c.ok && (err != nil || tok != want):
				t.Errorf("mode %04o, %s: %q, %v", c.mode, key, tok, err)
			case !c.ok && (err == nil || !strings.Contains(err.Error(), "defaultMode: 0400")):
				t.Errorf("mode %04o, %s: %q, %v; want a refusal naming defaultMode", c.mode, key, tok, err)
			}
		}
	}
	// A link to a directory, or to nothing, is no token file.
	dir := t.TempDir()
	secretVolume(t, dir, 0o400, map[string]string{"lab-token": "x"})
	if _, err := auth.ReadTokenFile(filepath.Join(dir, "..data")); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("..data itself: %v", err)
	}
	if err := os.Symlink(filepath.Join("..data", "gone"), filepath.Join(dir, "gone")); err != nil {
		t.Fatal(err)
	}
	if _, err := auth.ReadTokenFile(filepath.Join(dir, "gone")); err == nil {
		t.Error("a dangling link was accepted")
	}
}

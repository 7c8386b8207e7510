package auth

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// MaxTokenFileBytes bounds a token file.
const MaxTokenFileBytes = 64 << 10

// ReadTokenFile reads a bearer token from path: the file's content without
// the surrounding white space (a final newline is usual). An empty file, a
// token with white space or control characters inside (more than one line),
// a file larger than MaxTokenFileBytes, and a file other users may read or
// write are refused: a secret in a world-readable file is no secret. Write
// one with `umask 077` or chmod 600 (genailab up writes its own so).
//
// The owner and the group may read it: a Kubernetes Secret volume gives
// root-owned files, group-owned by the pod's fsGroup and group-readable
// (defaultMode 0440, or 0400 that fsGroup widens), reached through a symlink
// into its ..data directory; path is followed to the file the links name.
// The Secret's default mode (0644) is refused.
func ReadTokenFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("token file %s: not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o006 != 0 {
		return "", fmt.Errorf("token file %s: mode %04o lets every user of this machine read or change it; chmod 600 it "+
			"(a Kubernetes Secret volume: set defaultMode: 0400, or 0440 with the pod's fsGroup)", path, perm)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxTokenFileBytes+1))
	if err != nil {
		return "", fmt.Errorf("token file %s: %w", path, err)
	}
	if len(b) > MaxTokenFileBytes {
		return "", fmt.Errorf("token file %s: larger than %d bytes", path, MaxTokenFileBytes)
	}
	tok := strings.TrimSpace(string(b))
	switch {
	case tok == "":
		return "", fmt.Errorf("token file %s is empty", path)
	case strings.ContainsFunc(tok, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return "", fmt.Errorf("token file %s: the token holds white space or control characters (one token on one line)", path)
	}
	return tok, nil
}

// WriteTokenFile writes token to path with mode 0600 (replacing a file
// there atomically), for ReadTokenFile.
func WriteTokenFile(path, token string) error {
	if token == "" {
		return errors.New("write token file: empty token")
	}
	tmp := path + ".tmp"
	_ = os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write token file: %w", err)
	}
	_, err = f.WriteString(token + "\n")
	if err == nil {
		err = f.Chmod(0o600) // whatever the umask
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write token file: %w", err)
	}
	return nil
}

// TokenFlags registers two flags on fs that both fill *dst: -<name>, the
// token itself, and -<name>-file, a file holding it (ReadTokenFile, read
// when the flag is set). Giving both is an error. A token on a command line
// is visible to every user of the machine (ps, /proc/PID/cmdline): prefer
// the file, or the flag's environment variable (pkg/config).
func TokenFlags(fs *flag.FlagSet, dst *string, name, usage string) {
	t := &tokenFlags{dst: dst, name: name}
	fs.Var(tokenValue{t, false}, name, usage+" (visible to local users on a command line: prefer -"+name+"-file or the environment)")
	fs.Var(tokenValue{t, true}, name+"-file", "file holding the "+usage+" (mode 0600; instead of -"+name+")")
}

type tokenFlags struct {
	dst       *string
	name      string
	fromValue bool
	fromFile  string
}

type tokenValue struct {
	t    *tokenFlags
	file bool
}

func (v tokenValue) String() string {
	if v.t == nil || !v.file {
		return "" // never print a token (flag defaults, usage)
	}
	return v.t.fromFile
}

func (v tokenValue) Set(s string) error {
	t := v.t
	if v.file {
		if t.fromValue && *t.dst != "" {
			return fmt.Errorf("give -%s or -%s-file, not both", t.name, t.name)
		}
		if s == "" {
			return nil
		}
		tok, err := ReadTokenFile(s)
		if err != nil {
			return err
		}
		t.fromFile, *t.dst = s, tok
		return nil
	}
	if t.fromFile != "" && s != "" {
		return fmt.Errorf("give -%s or -%s-file, not both", t.name, t.name)
	}
	t.fromValue, *t.dst = true, s
	return nil
}

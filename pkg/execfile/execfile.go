// Package execfile is the one answer to "can this path be run as a program?": a regular file,
// or a link to one, with an execute bit. The engine lookups (llama-server, sd-cli and
// sd-server, the stand-ins, the stack's service binaries) and the test environment use it, so
// a directory or a file without an execute bit is refused the same way everywhere.
package execfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrNotExecutable marks a path that exists but is not a regular file with an execute bit.
var ErrNotExecutable = errors.New("not an executable file")

// Check returns the absolute path of p when p is, or links to, a regular file with an execute
// bit. Otherwise the error is os.Stat's (fs.ErrNotExist for a missing file) or wraps
// ErrNotExecutable, and names the path.
func Check(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	st, err := os.Stat(abs)
	if err != nil {
		return "", err
	}
	switch {
	case !st.Mode().IsRegular():
		return "", fmt.Errorf("%s is %w (%s)", abs, ErrNotExecutable, kind(st.Mode()))
	case st.Mode().Perm()&0o111 == 0:
		return "", fmt.Errorf("%s is %w (no execute permission)", abs, ErrNotExecutable)
	}
	return abs, nil
}

// Is reports whether p passes Check.
func Is(p string) bool {
	_, err := Check(p)
	return err == nil
}

func kind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&os.ModeNamedPipe != 0:
		return "a named pipe"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m&os.ModeDevice != 0:
		return "a device"
	}
	return "not a regular file"
}

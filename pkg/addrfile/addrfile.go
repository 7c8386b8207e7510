// Package addrfile is how a genailab process reports the address it bound (useful with
// port 0) to whoever started it: one file holding the address, written atomically so
// that a reader never sees a partial address, and removed at shutdown.
package addrfile

import (
	"os"
	"path/filepath"
	"strings"
)

// Write writes addr to path through a temporary file and a rename.
func Write(path, addr string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	if _, err := tmp.WriteString(addr); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Read returns the address in path, or "" when the file does not exist (yet).
func Read(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

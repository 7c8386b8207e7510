package modelstore

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Every file of the store is reached through an os.Root opened on the store
// directory (Store.dir), with paths relative to it ("<id>/<file>"): a symbolic
// link planted in the store that leads out of it — to /etc/passwd, or a model
// directory that is a link to elsewhere — makes the operation fail with
// ErrOutsideStore instead of reading or writing the file it points to. Links
// that stay inside the store are followed, as the kernel would.
//
// What remains path-based: Store.Root, ModelDir and FilePath, whose callers (the
// engines) open the files themselves; ReadGGUFInfo, whose parser takes a path
// (the store checks through the root first that the file and its shards stay
// inside); the free-space check (statfs reads no file); and Import's source,
// which is outside the store by design.

var (
	escapeOnce sync.Once
	// escapeErr is os.Root's "path escapes from parent", which the os package does not
	// export; it is learned from the first root opened.
	escapeErr error
)

// learnEscapeErr records the error r returns for a path that leaves it. Resolving ".."
// at the top of a root fails before any file is touched.
func learnEscapeErr(r *os.Root) {
	escapeOnce.Do(func() {
		_, err := r.Lstat("..")
		var pe *os.PathError
		if errors.As(err, &pe) && pe.Err != nil {
			escapeErr = pe.Err
		}
	})
}

// isEscape reports whether err is os.Root refusing a path that leads out of it.
func isEscape(err error) bool {
	if err == nil {
		return false
	}
	if escapeErr != nil {
		return errors.Is(err, escapeErr)
	}
	return strings.Contains(err.Error(), "path escapes from parent")
}

// outside marks an os.Root error for a path that leaves the store with
// ErrOutsideStore; other errors are returned unchanged.
func outside(err error) error {
	if isEscape(err) {
		return fmt.Errorf("%w: %w", ErrOutsideStore, err)
	}
	return err
}

// rel is the path of a model's file (or of the model directory, without name)
// relative to the store directory.
func rel(id string, name ...string) string {
	return filepath.Join(append([]string{id}, name...)...)
}

// abs is the absolute path of a relative store path, for logs, errors and the
// path-based helpers.
func (s *Store) abs(p string) string { return filepath.Join(s.root, p) }

// createTemp creates a new file in dir (relative to r) named pattern with its last
// "*" replaced by a random string, like os.CreateTemp. It returns the file and its
// path relative to r.
func createTemp(r *os.Root, dir, pattern string) (*os.File, string, error) {
	prefix, suffix := pattern, ""
	if i := strings.LastIndex(pattern, "*"); i >= 0 {
		prefix, suffix = pattern[:i], pattern[i+1:]
	}
	for range 100 {
		name := filepath.Join(dir, prefix+randomSuffix()+suffix)
		f, err := r.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, "", outside(err)
		}
		return f, name, nil
	}
	return nil, "", fmt.Errorf("create a temporary file in %s: too many name collisions", dir)
}

// mkdirTemp creates a new directory in r named prefix plus a random string, like
// os.MkdirTemp, and returns its path relative to r.
func mkdirTemp(r *os.Root, prefix string) (string, error) {
	for range 100 {
		name := prefix + randomSuffix()
		err := r.Mkdir(name, 0o700)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", outside(err)
		}
		return name, nil
	}
	return "", fmt.Errorf("create a temporary directory %s*: too many name collisions", prefix)
}

func randomSuffix() string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// readDir lists a directory of r.
func readDir(r *os.Root, dir string) ([]fs.DirEntry, error) {
	d, err := r.Open(dir)
	if err != nil {
		return nil, outside(err)
	}
	defer d.Close()
	return d.ReadDir(-1)
}

// syncDir fsyncs a directory of r, so that renames in it are durable.
func syncDir(r *os.Root, dir string) error {
	d, err := r.Open(dir)
	if err != nil {
		return outside(err)
	}
	defer d.Close()
	return d.Sync()
}

// removeQuietly removes files of r, ignoring errors (a missing file is the usual
// case). A symbolic link is removed itself, never what it points to.
func removeQuietly(r *os.Root, paths ...string) {
	for _, p := range paths {
		_ = r.Remove(p)
	}
}

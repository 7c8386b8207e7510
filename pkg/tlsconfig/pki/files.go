package pki

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// File is a file to write: certificates 0644, private keys 0600.
type File struct {
	Path string
	Data []byte
	Mode fs.FileMode
}

// ErrExists is returned when a file to write is already there and force is off.
var ErrExists = errors.New("file exists (use -force to overwrite)")

// WriteFiles writes every file atomically (temporary file, fsync, then rename or link).
// Without force it first checks that none exists, and each file is put in place with
// link(2), which fails rather than replace a file created meanwhile; nothing is
// overwritten. A key is never visible with a looser mode than its own: the temporary
// file is created 0600 and chmod-ed before it is put in place.
func WriteFiles(files []File, force bool) error {
	if !force {
		for _, f := range files {
			if _, err := os.Lstat(f.Path); err == nil {
				return fmt.Errorf("%s: %w", f.Path, ErrExists)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("check %s: %w", f.Path, err)
			}
		}
	}
	for _, f := range files {
		if err := writeOne(f, force); err != nil {
			return err
		}
	}
	return nil
}

func writeOne(f File, force bool) error {
	dir := filepath.Dir(f.Path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(f.Path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", f.Path, err)
	}
	name := tmp.Name()
	defer os.Remove(name) // after a link, or after a failure; a renamed file is gone already
	if _, err := tmp.Write(f.Data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", f.Path, err)
	}
	if err := tmp.Chmod(f.Mode); err != nil {
		tmp.Close()
		return fmt.Errorf("chmod %s: %w", f.Path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync %s: %w", f.Path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", f.Path, err)
	}
	if force {
		if err := os.Rename(name, f.Path); err != nil {
			return fmt.Errorf("write %s: %w", f.Path, err)
		}
		return nil
	}
	if err := os.Link(name, f.Path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s: %w", f.Path, ErrExists)
		}
		return fmt.Errorf("write %s: %w", f.Path, err)
	}
	return nil
}

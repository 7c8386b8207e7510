package logring

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

// File is an append-only log file rotated by size: when a write would take
// the file past MaxBytes, path is renamed to path.1 (path.1 to path.2, and so
// on; the oldest beyond Keep is removed) and a new path is started. It is safe
// for concurrent use. A single write larger than MaxBytes goes to a fresh file
// whole rather than being split.
type File struct {
	path     string
	maxBytes int64
	keep     int

	mu   sync.Mutex
	f    *os.File
	size int64
}

// Default rotation settings used by OpenFile for zero values.
const (
	DefaultMaxBytes = 10 << 20
	DefaultKeep     = 3
)

// OpenFile opens (or creates) path for appending. maxBytes <= 0 means
// DefaultMaxBytes; keep < 0 means DefaultKeep, and keep == 0 keeps no rotated
// files. The directory must exist.
func OpenFile(path string, maxBytes int64, keep int) (*File, error) {
	if path == "" {
		return nil, errors.New("logring: empty log file path")
	}
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	if keep < 0 {
		keep = DefaultKeep
	}
	lf := &File{path: path, maxBytes: maxBytes, keep: keep}
	if err := lf.open(); err != nil {
		return nil, err
	}
	return lf, nil
}

// Path returns the path of the current file.
func (lf *File) Path() string { return lf.path }

func (lf *File) open() error {
	f, err := os.OpenFile(lf.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("open log file: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("open log file: %w", err)
	}
	lf.f, lf.size = f, st.Size()
	return nil
}

// Write appends p, rotating first when needed.
func (lf *File) Write(p []byte) (int, error) {
	lf.mu.Lock()
	defer lf.mu.Unlock()
	if lf.f == nil {
		return 0, os.ErrClosed
	}
	if lf.size > 0 && lf.size+int64(len(p)) > lf.maxBytes {
		if err := lf.rotate(); err != nil {
			return 0, err
		}
	}
	n, err := lf.f.Write(p)
	lf.size += int64(n)
	return n, err
}

// rotate shifts path.(i) to path.(i+1), path to path.1 and reopens path.
// lf.mu must be held.
func (lf *File) rotate() error {
	if err := lf.f.Close(); err != nil {
		return fmt.Errorf("rotate log file: %w", err)
	}
	lf.f = nil
	if lf.keep == 0 {
		if err := os.Remove(lf.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("rotate log file: %w", err)
		}
	} else {
		_ = os.Remove(lf.rotated(lf.keep))
		for i := lf.keep - 1; i >= 1; i-- {
			if err := os.Rename(lf.rotated(i), lf.rotated(i+1)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("rotate log file: %w", err)
			}
		}
		if err := os.Rename(lf.path, lf.rotated(1)); err != nil {
			return fmt.Errorf("rotate log file: %w", err)
		}
	}
	return lf.open()
}

func (lf *File) rotated(i int) string {
	return filepath.Clean(lf.path) + "." + strconv.Itoa(i)
}

// Close closes the file. Later writes fail with os.ErrClosed.
func (lf *File) Close() error {
	lf.mu.Lock()
	defer lf.mu.Unlock()
	if lf.f == nil {
		return nil
	}
	err := lf.f.Close()
	lf.f = nil
	return err
}

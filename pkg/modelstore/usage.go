package modelstore

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"
	"syscall"
)

// Usage is the disk use of a store, measured on disk. A file with several
// links is counted once.
type Usage struct {
	Type         Type
	TotalBytes   int64 // all files: models, partial downloads, records
	ModelBytes   int64 // files of complete models
	PartialBytes int64 // .partial files of unfinished downloads
	ModelCount   int
	FreeBytes    uint64 // available on the file system
	Models       []ModelUsage
}

// ModelUsage is the disk use of one model directory.
type ModelUsage struct {
	ID       string
	Bytes    int64
	Complete bool // has a record
}

// StorageUsage walks the store directory.
func (s *Store) StorageUsage(ctx context.Context) (*Usage, error) {
	u := &Usage{Type: s.typ}
	type inode struct{ dev, ino uint64 }
	seen := map[inode]bool{}
	entries, err := readDir(s.dir, ".")
	if err != nil {
		return nil, fmt.Errorf("storage usage: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() || ValidateID(e.Name()) != nil {
			continue
		}
		_, statErr := s.dir.Stat(rel(e.Name(), recordName))
		mu := ModelUsage{ID: e.Name(), Complete: statErr == nil}
		err := fs.WalkDir(s.dir.FS(), e.Name(), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			if !d.Type().IsRegular() {
				return nil
			}
			fi, err := s.dir.Lstat(p)
			if err != nil {
				return outside(err)
			}
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				k := inode{uint64(st.Dev), uint64(st.Ino)}
				if seen[k] {
					return nil
				}
				seen[k] = true
			}
			n := fi.Size()
			mu.Bytes += n
			u.TotalBytes += n
			switch {
			case strings.HasSuffix(d.Name(), partialSuffix):
				u.PartialBytes += n
			case mu.Complete && d.Name() != recordName && !strings.HasSuffix(d.Name(), metaSuffix):
				u.ModelBytes += n
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("storage usage of %s: %w", e.Name(), err)
		}
		if mu.Complete {
			u.ModelCount++
		}
		u.Models = append(u.Models, mu)
	}
	sort.Slice(u.Models, func(i, j int) bool { return u.Models[i].ID < u.Models[j].ID })
	free, err := s.freeSpace(s.root)
	if err != nil {
		return nil, fmt.Errorf("storage usage: %w", err)
	}
	u.FreeBytes = free
	return u, nil
}

// dirBytes sums the sizes of the regular files under dir (relative to r), each
// inode once. Links are not followed.
func dirBytes(r *os.Root, dir string) int64 {
	type inode struct{ dev, ino uint64 }
	seen := map[inode]bool{}
	var n int64
	if fi, err := r.Lstat(dir); err != nil || !fi.IsDir() {
		return 0 // a link is removed itself: it frees nothing of what it points to
	}
	fs.WalkDir(r.FS(), dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		fi, err := r.Lstat(p)
		if err != nil {
			return nil
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			k := inode{uint64(st.Dev), uint64(st.Ino)}
			if seen[k] {
				return nil
			}
			seen[k] = true
		}
		n += fi.Size()
		return nil
	})
	return n
}

package modelstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
)

// FileCheck is the result of re-hashing one file of a model.
type FileCheck struct {
	Name           string
	Component      string
	ExpectedSHA256 string
	ActualSHA256   string
	ExpectedSize   int64
	ActualSize     int64
	Missing        bool
	OK             bool
}

// VerifyReport tells whether every file of a model still matches its record.
type VerifyReport struct {
	ID    string
	OK    bool
	Files []FileCheck
}

// Verify re-hashes the files of a model and compares them with its record.
// A mismatch is reported in the report, not as an error. A file that is a link
// out of the store is an error (ErrOutsideStore), and nothing of what it points
// to is read or reported.
func (s *Store) Verify(ctx context.Context, id string) (*VerifyReport, error) {
	rec, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	rep := &VerifyReport{ID: id, OK: true}
	for _, f := range rec.Files {
		c := FileCheck{Name: f.Name, Component: f.Component, ExpectedSHA256: f.SHA256, ExpectedSize: f.Size}
		sum, size, err := s.hashFile(ctx, rel(id, f.Name))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			c.Missing = true
		case errors.Is(err, ErrOutsideStore):
			s.log.Warn("model file leads out of the store; not verified", "id", id, "file", f.Name)
			return nil, fmt.Errorf("verify %s: file %s: %w", id, f.Name, err)
		case err != nil:
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("verify %s: %w", id, err)
		default:
			c.ActualSHA256, c.ActualSize = sum, size
			c.OK = sum == f.SHA256 && size == f.Size
		}
		rep.OK = rep.OK && c.OK
		rep.Files = append(rep.Files, c)
	}
	return rep, nil
}

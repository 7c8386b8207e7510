package modelstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
)

// NormalizeSHA256 accepts a hex sha256 sum, optionally prefixed "sha256:",
// in any case, and returns it as 64 lower-case hex digits. Empty stays empty.
func NormalizeSHA256(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	if len(s) > 7 && strings.EqualFold(s[:7], "sha256:") {
		s = s[7:]
	}
	s = strings.ToLower(s)
	if len(s) != sha256.Size*2 {
		return "", fmt.Errorf("%w: sha256 %q must have 64 hex digits", ErrInvalidArgument, s)
	}
	if _, err := hex.DecodeString(s); err != nil {
		return "", fmt.Errorf("%w: sha256 %q is not hex", ErrInvalidArgument, s)
	}
	return s, nil
}

// HashFile returns the sha256 (lower-case hex) and size of a file. It stops
// early when ctx is done.
func HashFile(ctx context.Context, path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	return hashOpen(ctx, f, path)
}

// hashFile is HashFile for a file of the store (name relative to s.dir): a link
// out of the store fails with ErrOutsideStore, and nothing of its target is read.
func (s *Store) hashFile(ctx context.Context, name string) (string, int64, error) {
	f, err := s.dir.Open(name)
	if err != nil {
		return "", 0, outside(err)
	}
	defer f.Close()
	return hashOpen(ctx, f, s.abs(name))
}

func hashOpen(ctx context.Context, f *os.File, path string) (string, int64, error) {
	h := sha256.New()
	n, err := io.Copy(h, ctxReader{ctx: ctx, r: f})
	if err != nil {
		return "", n, fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// ctxReader fails reads once its context is done, so long local reads can be
// abandoned.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

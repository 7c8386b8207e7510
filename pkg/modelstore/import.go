package modelstore

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Import copies a model file that is already on this host (for example one made by
// genailab-tinymodel, or copied in by hand) into the store as a single-file model with
// component "model", with its sha256, size and GGUF metadata, exactly like a download.
// The file appears in the store only by atomic rename; the source is left untouched.
func (s *Store) Import(ctx context.Context, id, name, srcPath string) (rec *Record, err error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	base, err := SafeFileName(filepath.Base(srcPath))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	op := &operation{cancel: cancel, done: make(chan struct{})}
	dir, err := s.claim(id, op)
	if err != nil {
		return nil, err
	}
	defer s.release(id, op)
	dst := filepath.Join(dir, base)
	defer func() {
		if err != nil {
			os.Remove(dst)
			os.Remove(dir)
		}
	}()
	if err := copyFileAtomic(ctx, srcPath, dst); err != nil {
		return nil, fmt.Errorf("import %s: %w", srcPath, err)
	}
	sum, size, err := HashFile(ctx, dst)
	if err != nil {
		return nil, fmt.Errorf("hash %s: %w", dst, err)
	}
	if name == "" {
		name = id
	}
	rec = &Record{ID: id, Name: name, Type: s.typ, DownloadedAt: s.now().UTC(),
		Files: []FileRecord{{Component: ComponentModel, Name: base, Size: size, SHA256: sum}}}
	if strings.HasSuffix(strings.ToLower(base), ".gguf") {
		info, gerr := ReadGGUFInfo(dst)
		if gerr != nil {
			rec.GGUFError = gerr.Error()
		}
		rec.GGUF = info
	}
	if err := writeJSONAtomic(filepath.Join(dir, recordName), rec); err != nil {
		return nil, fmt.Errorf("write record of %s: %w", id, err)
	}
	s.log.Info("model imported", "id", id, "type", s.typ, "bytes", size, "from", srcPath)
	return rec, nil
}

// copyFileAtomic copies src to a temporary file beside dst, syncs it and renames it.
func copyFileAtomic(ctx context.Context, src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".import-*")
	if err != nil {
		return err
	}
	_, err = io.Copy(tmp, ctxReader{ctx: ctx, r: in})
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), dst)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

package modelstore

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/genailab/genailab/pkg/modelfile"
)

// Import copies a model file that is already on this host (for example one made by
// genailab-tinymodel, or copied in by hand) into the store as a single-file model with
// component "model", with its sha256, size and GGUF metadata, exactly like a download.
// The file appears in the store only by atomic rename; the source is left untouched.
// The source is opened by its path (it is outside the store by design); inside the
// store, a link planted at the destination is replaced, and a model directory that
// is a link out of the store is refused (ErrOutsideStore): nothing is written outside.
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
	if err := s.claim(id, op); err != nil {
		return nil, err
	}
	defer s.release(id, op)
	dst := rel(id, base)
	defer func() {
		if err != nil {
			removeQuietly(s.dir, dst, id)
		}
	}()
	if err := s.copyFileAtomic(ctx, srcPath, dst); err != nil {
		return nil, fmt.Errorf("import %s: %w", srcPath, err)
	}
	sum, size, err := s.hashFile(ctx, dst)
	if err != nil {
		return nil, fmt.Errorf("hash %s: %w", s.abs(dst), err)
	}
	if err := s.checkWhole(dst); err != nil {
		return nil, fmt.Errorf("import %s: %w", srcPath, err)
	}
	if name == "" {
		name = id
	}
	rec = &Record{ID: id, Name: name, Type: s.typ, DownloadedAt: s.now().UTC(),
		Files: []FileRecord{{Component: ComponentModel, Name: base, Size: size, SHA256: sum}}}
	if strings.HasSuffix(strings.ToLower(base), ".gguf") {
		info, gerr := s.readGGUF(id, base)
		if gerr != nil {
			rec.GGUFError = gerr.Error()
		}
		rec.GGUF = info
	}
	if err := writeJSONAtomic(s.dir, rel(id, recordName), rec); err != nil {
		return nil, fmt.Errorf("write record of %s: %w", id, err)
	}
	s.log.Info("model imported", "id", id, "type", s.typ, "bytes", size, "from", srcPath)
	return rec, nil
}

// copyFileAtomic copies src (a path outside the store) to a temporary file beside
// dst (relative to s.dir), syncs it and renames it onto dst.
func (s *Store) copyFileAtomic(ctx context.Context, src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp, tmpName, err := createTemp(s.dir, filepath.Dir(dst), "."+filepath.Base(dst)+".import-*")
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
		err = outside(s.dir.Rename(tmpName, dst))
	}
	if err != nil {
		removeQuietly(s.dir, tmpName)
	}
	return err
}

// checkWhole refuses a model file (relative to s.dir) that is not a whole model of its format: a
// truncated or corrupt GGUF or safetensors file (modelfile.ErrInvalid). Engines handle such files
// badly (sd-cli aborts mid-load; sd-server starts and dies on the first image).
//
// Only diffusion models are checked: the LLM engine (llama-server) refuses such files itself, at
// once and with a clear message.
func (s *Store) checkWhole(name string) error {
	if s.typ != TypeDiffusion {
		return nil
	}
	if _, err := s.dir.Stat(name); err != nil {
		return outside(err) // through the root: no link out of the store is followed
	}
	return modelfile.Check(s.abs(name))
}

package jobs

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"google.golang.org/protobuf/encoding/protojson"

	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/pkg/imagereq"
)

// gallery keeps the generated images on disk: <dir>/<job id>.png (and, for a batch,
// <job id>_1.png ... <job id>_<n-1>.png) and, next to it, <job id>.json with the job
// (parameters, seeds, size, times). Each is written to a
// temporary file, synced, renamed, and the directory synced, before the job is marked
// succeeded: a crash never leaves half an image, and a job never says SUCCEEDED without
// its image on disk. The files are written and synced in parallel (the file system
// commits their syncs together: one wait instead of one per file), and the directory
// is synced once, after every rename.
type gallery struct {
	dir string
	// createTemp is the file-writing seam (os.CreateTemp; tests inject a full disk).
	createTemp func(dir, pattern string) (tempFile, error)
}

// tempFile is what the gallery writes through.
type tempFile interface {
	io.Writer
	Sync() error
	Close() error
	Name() string
}

func osCreateTemp(dir, pattern string) (tempFile, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	return f, nil
}

func (g gallery) pngPath(id string) string  { return filepath.Join(g.dir, id+".png") }
func (g gallery) jsonPath(id string) string { return filepath.Join(g.dir, id+".json") }

// batchPath is image i (1..n-1) of a batch; ids are [a-z0-9], so "_" cannot collide.
func (g gallery) batchPath(id string, i int) string {
	return filepath.Join(g.dir, fmt.Sprintf("%s_%d.png", id, i))
}

// save writes the image and its record, durably. On failure nothing of the job is left
// in the gallery, and the error names a full disk (ENOSPC) as such.
func (g gallery) save(j *orchestratorv1.Job, png []byte, batch [][]byte) (err error) {
	if !ValidID(j.GetId()) {
		return fmt.Errorf("save image: invalid job id %q", j.GetId())
	}
	defer func() {
		if err != nil {
			_ = g.remove(j.GetId())
			if errors.Is(err, syscall.ENOSPC) {
				err = fmt.Errorf("the disk is full (ENOSPC): %w", err)
			}
		}
	}()
	if err := os.MkdirAll(g.dir, 0o700); err != nil {
		return fmt.Errorf("create image directory: %w", err)
	}
	meta, err := protojson.MarshalOptions{Multiline: true}.Marshal(j)
	if err != nil {
		return fmt.Errorf("encode job %s: %w", j.GetId(), err)
	}
	if !json.Valid(meta) {
		return fmt.Errorf("encode job %s: invalid JSON", j.GetId())
	}
	files := make([]galleryFile, 0, len(batch)+2)
	files = append(files, galleryFile{g.pngPath(j.GetId()), png, fmt.Sprintf("the %d-byte image", len(png))})
	for i, b := range batch {
		files = append(files, galleryFile{g.batchPath(j.GetId(), i+1), b, fmt.Sprintf("image %d", i+1)})
	}
	files = append(files, galleryFile{g.jsonPath(j.GetId()), meta, "parameters"})
	errs := make([]error, len(files))
	var wg sync.WaitGroup
	for i, f := range files {
		wg.Go(func() { errs[i] = g.writeAtomic(f.path, f.data) })
	}
	wg.Wait()
	for i, f := range files {
		if errs[i] != nil {
			return fmt.Errorf("save %s of job %s in %s: %w", f.what, j.GetId(), g.dir, errs[i])
		}
	}
	// The renames are durable once the directory is synced.
	if err := syncDir(g.dir); err != nil {
		return fmt.Errorf("sync image directory %s: %w", g.dir, err)
	}
	return nil
}

// galleryFile is one file of a job in the gallery: its path, its bytes, and what it is (for
// errors).
type galleryFile struct {
	path string
	data []byte
	what string
}

// load reads an image.
func (g gallery) load(id string) ([]byte, error) {
	if !ValidID(id) {
		return nil, fmt.Errorf("load image: invalid job id %q", id)
	}
	data, err := os.ReadFile(g.pngPath(id))
	if err != nil {
		return nil, fmt.Errorf("load image of job %s: %w", id, err)
	}
	return data, nil
}

// loadBatch reads images 1..n-1 of a batch of n.
func (g gallery) loadBatch(id string, n int) ([][]byte, error) {
	if !ValidID(id) {
		return nil, fmt.Errorf("load image: invalid job id %q", id)
	}
	var out [][]byte
	for i := 1; i < n; i++ {
		data, err := os.ReadFile(g.batchPath(id, i))
		if err != nil {
			return nil, fmt.Errorf("load image %d of job %s: %w", i, id, err)
		}
		out = append(out, data)
	}
	return out, nil
}

// remove deletes the images of a job (a batch's too) and its record; missing files are fine.
func (g gallery) remove(id string) error {
	if !ValidID(id) {
		return nil
	}
	paths := []string{g.pngPath(id), g.jsonPath(id)}
	for i := 1; i < imagereq.MaxBatch; i++ {
		paths = append(paths, g.batchPath(id, i))
	}
	for _, p := range paths {
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("remove %s: %w", p, err)
		}
	}
	return nil
}

// writeAtomic writes data to a temporary file next to path, syncs it and renames it to
// path; the temporary file is removed on failure.
func (g gallery) writeAtomic(path string, data []byte) error {
	create := g.createTemp
	if create == nil {
		create = osCreateTemp
	}
	tmp, err := create(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

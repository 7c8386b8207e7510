package jobs

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"google.golang.org/protobuf/encoding/protojson"

	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
)

// gallery keeps the generated images on disk: <dir>/<job id>.png and, next to it,
// <job id>.json with the job (parameters, seed, size, times). Both are written to a
// temporary file, synced and renamed, so a crash never leaves half an image.
type gallery struct{ dir string }

func (g gallery) pngPath(id string) string  { return filepath.Join(g.dir, id+".png") }
func (g gallery) jsonPath(id string) string { return filepath.Join(g.dir, id+".json") }

// save writes the image and its record.
func (g gallery) save(j *orchestratorv1.Job, png []byte) error {
	if !ValidID(j.GetId()) {
		return fmt.Errorf("save image: invalid job id %q", j.GetId())
	}
	if err := os.MkdirAll(g.dir, 0o700); err != nil {
		return fmt.Errorf("create image directory: %w", err)
	}
	if err := writeAtomic(g.pngPath(j.GetId()), png); err != nil {
		return fmt.Errorf("save image of job %s: %w", j.GetId(), err)
	}
	meta, err := protojson.MarshalOptions{Multiline: true}.Marshal(j)
	if err != nil {
		return fmt.Errorf("encode job %s: %w", j.GetId(), err)
	}
	if !json.Valid(meta) {
		return fmt.Errorf("encode job %s: invalid JSON", j.GetId())
	}
	if err := writeAtomic(g.jsonPath(j.GetId()), meta); err != nil {
		return fmt.Errorf("save parameters of job %s: %w", j.GetId(), err)
	}
	return nil
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

// remove deletes an image and its record; missing files are fine.
func (g gallery) remove(id string) error {
	if !ValidID(id) {
		return nil
	}
	for _, p := range []string{g.pngPath(id), g.jsonPath(id)} {
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("remove %s: %w", p, err)
		}
	}
	return nil
}

func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
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

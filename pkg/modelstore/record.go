package modelstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Record is the metadata of one downloaded model, stored as model.json in the
// model's directory.
type Record struct {
	ID           string       `json:"id"`
	Name         string       `json:"name"`
	Type         Type         `json:"type"`
	Files        []FileRecord `json:"files"`
	SourceURL    string       `json:"source_url"` // of the main file, without query string
	DownloadedAt time.Time    `json:"downloaded_at"`
	PresetID     string       `json:"preset_id,omitempty"`
	GGUF         *GGUFInfo    `json:"gguf,omitempty"`       // of the main file when it is GGUF
	GGUFError    string       `json:"gguf_error,omitempty"` // why GGUF metadata could not be read
}

// FileRecord is one file of a model.
type FileRecord struct {
	Component string `json:"component"`
	Name      string `json:"name"` // relative to the model directory
	Size      int64  `json:"size"`
	SHA256    string `json:"sha256"`
	URL       string `json:"url"` // without query string
}

// Size is the sum of the model's file sizes.
func (r *Record) Size() int64 {
	var n int64
	for _, f := range r.Files {
		n += f.Size
	}
	return n
}

// MainFile is the file an engine loads first: the "model" or
// "diffusion_model" component (its first shard when split).
func (r *Record) MainFile() *FileRecord {
	for i := range r.Files {
		if c := r.Files[i].Component; c == ComponentModel || c == ComponentDiffusionModel {
			return &r.Files[i]
		}
	}
	return nil
}

// readRecord loads and checks the record of model wantID in root.
func readRecord(root *os.Root, wantID string, wantType Type) (*Record, error) {
	b, err := root.ReadFile(rel(wantID, recordName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, wantID)
	}
	if err != nil {
		return nil, fmt.Errorf("read record of %s: %w", wantID, outside(err))
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorruptRecord, wantID, err)
	}
	if r.ID != wantID || r.Type != wantType {
		return nil, fmt.Errorf("%w: %s: record names id %q type %q", ErrCorruptRecord, wantID, r.ID, r.Type)
	}
	for _, f := range r.Files {
		if _, err := SafeFileName(f.Name); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrCorruptRecord, wantID, err)
		}
	}
	return &r, nil
}

// writeJSONAtomic writes v to path (relative to r) through a temp file in the
// same directory: write, fsync, rename, fsync the directory. Readers see the old
// file or the new one, never a half-written one. A link at path is replaced, not
// written through.
func writeJSONAtomic(r *os.Root, path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	f, tmp, err := createTemp(r, dir, tempPrefix+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			removeQuietly(r, tmp)
		}
	}()
	if _, err := f.Write(append(b, '\n')); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := r.Rename(tmp, path); err != nil {
		return outside(err)
	}
	ok = true
	return syncDir(r, dir)
}

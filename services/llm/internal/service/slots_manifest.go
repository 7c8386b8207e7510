package service

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The slot manifest says which slot files in the slot directory are whole and what they may be
// restored into. Slot files are written by llama-server under a temporary name, checksummed,
// synced and renamed by the service; the manifest is written last (temporary file, sync, rename,
// sync of the directory), so a file it names is complete, and a crash mid-save leaves the
// previous manifest or none: never one naming a half-written file.

const (
	slotManifestName    = "manifest.json"
	slotManifestVersion = 1
	slotFilePrefix      = "slot-"
	slotTempPrefix      = "tmp-"
	maxSlotManifest     = 1 << 20
)

// slotKey is what a KV cache depends on: a file saved under one key is only restored into a
// server with the same key.
type slotKey struct {
	ModelID      string `json:"model_id"`
	ModelSize    int64  `json:"model_size"`
	ModelModTime int64  `json:"model_mtime_ns"`
	ContextSize  int32  `json:"context_size"`
	SlotContext  int    `json:"slot_context"`
	Slots        int    `json:"slots"`
	CacheTypeK   string `json:"cache_type_k"`
	CacheTypeV   string `json:"cache_type_v"`
}

// mismatch describes how k differs from the key of the running server, or "" when it does not.
func (k slotKey) mismatch(now slotKey) string {
	var d []string
	add := func(what string, was, is any) {
		if was != is {
			d = append(d, fmt.Sprintf("%s %v, now %v", what, was, is))
		}
	}
	add("model", k.ModelID, now.ModelID)
	add("model file size", k.ModelSize, now.ModelSize)
	add("model file mtime", time.Unix(0, k.ModelModTime).UTC().Format(time.RFC3339Nano), time.Unix(0, now.ModelModTime).UTC().Format(time.RFC3339Nano))
	add("context size", k.ContextSize, now.ContextSize)
	add("slot context", k.SlotContext, now.SlotContext)
	add("slots", k.Slots, now.Slots)
	add("cache_type_k", k.CacheTypeK, now.CacheTypeK)
	add("cache_type_v", k.CacheTypeV, now.CacheTypeV)
	if len(d) == 0 {
		return ""
	}
	return "saved with " + strings.Join(d, "; ")
}

// slotEntry is one saved slot.
type slotEntry struct {
	SlotID int    `json:"slot_id"`
	File   string `json:"file"`
	Tokens int64  `json:"tokens"`
	Bytes  int64  `json:"bytes"`
	CRC32C uint32 `json:"crc32c"`
	// Task is llama-server's id of the slot's last task: higher is more recent.
	Task int `json:"task"`
}

// slotManifest is the content of manifest.json.
type slotManifest struct {
	Version int         `json:"version"`
	SavedAt time.Time   `json:"saved_at"`
	Key     slotKey     `json:"key"`
	Slots   []slotEntry `json:"slots"`
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// fileCRC returns the size and CRC-32C of a file.
func fileCRC(path string) (int64, uint32, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	h := crc32.New(crcTable)
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, 0, fmt.Errorf("read %s: %w", path, err)
	}
	return n, h.Sum32(), nil
}

// readSlotManifest reads dir's manifest; no manifest is (nil, nil).
func readSlotManifest(dir string) (*slotManifest, error) {
	f, err := os.Open(filepath.Join(dir, slotManifestName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read slot manifest: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSlotManifest+1))
	if err != nil {
		return nil, fmt.Errorf("read slot manifest: %w", err)
	}
	if len(data) > maxSlotManifest {
		return nil, fmt.Errorf("slot manifest: larger than %d bytes", maxSlotManifest)
	}
	var m slotManifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("slot manifest: %w", err)
	}
	if m.Version != slotManifestVersion {
		return nil, fmt.Errorf("slot manifest: version %d, want %d", m.Version, slotManifestVersion)
	}
	for _, e := range m.Slots {
		if !validSlotFile(e.File) {
			return nil, fmt.Errorf("slot manifest: bad file name %q", e.File)
		}
	}
	return &m, nil
}

// writeSlotManifest replaces dir's manifest atomically.
func writeSlotManifest(dir string, m *slotManifest) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encode slot manifest: %w", err)
	}
	f, err := os.CreateTemp(dir, slotTempPrefix+"manifest-*")
	if err != nil {
		return fmt.Errorf("write slot manifest: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, slotManifestName))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write slot manifest: %w", err)
	}
	return syncDir(dir)
}

// removeSlotManifest removes the manifest (making every slot file unreferenced).
func removeSlotManifest(dir string) error {
	err := os.Remove(filepath.Join(dir, slotManifestName))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove slot manifest: %w", err)
	}
	return syncDir(dir)
}

// pruneSlotFiles removes the slot and temporary files of dir that keep does not name.
func pruneSlotFiles(dir string, keep map[string]bool) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("list slot dir: %w", err)
	}
	var errs []error
	for _, e := range ents {
		n := e.Name()
		if keep[n] || !e.Type().IsRegular() || !(strings.HasPrefix(n, slotFilePrefix) || strings.HasPrefix(n, slotTempPrefix)) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// validSlotFile reports whether name is a slot file name the service writes (and llama-server
// accepts): no directory, no "..".
func validSlotFile(name string) bool {
	if !strings.HasPrefix(name, slotFilePrefix) || !strings.HasSuffix(name, ".bin") || len(name) > 128 {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return false
		}
	}
	return !strings.Contains(name, "..")
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

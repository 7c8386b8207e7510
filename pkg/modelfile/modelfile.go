// Package modelfile checks that a model file on disk is whole before an engine is asked to load
// it: a GGUF file's header parses and every tensor lies inside the file; a safetensors file's
// JSON header parses and every tensor's data range lies inside the file. It reads headers only,
// never the weights, so it costs milliseconds on a file of gigabytes.
//
// The check matters because the engines handle such files badly: stable-diffusion.cpp's sd-cli
// aborts (SIGABRT) mid-load on a truncated GGUF, and sd-server starts, reports ready and only
// dies on the first image.
package modelfile

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	gguf "github.com/gpustack/gguf-parser-go"
)

// ErrInvalid marks a model file that is not a whole model of its format.
var ErrInvalid = errors.New("invalid model file")

// Format is a model file's container format.
type Format string

// Formats Check understands.
const (
	GGUF        Format = "gguf"
	Safetensors Format = "safetensors"
	// Other: a format this package does not inspect (.ckpt, .pt, .bin); Check accepts it.
	Other Format = "other"
)

// Sniff tells a file's format from its first bytes (GGUF's magic) or, for safetensors, which has
// no magic, from its extension.
func Sniff(path string) (Format, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var magic [4]byte
	if n, _ := io.ReadFull(f, magic[:]); n == 4 && string(magic[:]) == "GGUF" {
		return GGUF, nil
	}
	ext := strings.ToLower(filepath.Ext(path))
	switch ext {
	case ".gguf":
		return GGUF, nil // without the magic: Check says what is wrong
	case ".safetensors":
		return Safetensors, nil
	}
	return Other, nil
}

// Check inspects the file at path; a file that is not whole fails with an error wrapping
// ErrInvalid that says what is wrong. Formats it does not know are accepted.
func Check(path string) error {
	format, err := Sniff(path)
	if err != nil {
		return fmt.Errorf("check model file: %w", err)
	}
	switch format {
	case GGUF:
		return checkGGUF(path)
	case Safetensors:
		return checkSafetensors(path)
	}
	return nil
}

func checkGGUF(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("check model file: %w", err)
	}
	f, err := gguf.ParseGGUFFile(path, gguf.SkipLargeMetadata())
	if err != nil {
		return fmt.Errorf("%w: %s is not a whole GGUF file (truncated or corrupt): %v", ErrInvalid, path, err)
	}
	if len(f.TensorInfos) == 0 {
		return fmt.Errorf("%w: %s holds no tensors", ErrInvalid, path)
	}
	size := uint64(st.Size())
	start := uint64(f.TensorDataStartOffset)
	for _, ti := range f.TensorInfos {
		end := start + ti.Offset + ti.Bytes()
		if end > size {
			return fmt.Errorf("%w: %s is truncated: tensor %q ends at byte %d of a %d-byte file", ErrInvalid, path, ti.Name, end, size)
		}
	}
	return nil
}

// safetensors: 8-byte little-endian header length N, N bytes of JSON {name: {dtype, shape,
// data_offsets: [begin, end]}, "__metadata__": {...}}, then the data; offsets are relative to it.
const maxSafetensorsHeader = 100 << 20

func checkSafetensors(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("check model file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("check model file: %w", err)
	}
	var n uint64
	if err := binary.Read(f, binary.LittleEndian, &n); err != nil {
		return fmt.Errorf("%w: %s is too short for a safetensors header", ErrInvalid, path)
	}
	if n == 0 || n > maxSafetensorsHeader || 8+n > uint64(st.Size()) {
		return fmt.Errorf("%w: %s: safetensors header length %d does not fit the %d-byte file", ErrInvalid, path, n, st.Size())
	}
	hdr := make([]byte, n)
	if _, err := io.ReadFull(f, hdr); err != nil {
		return fmt.Errorf("%w: %s: read safetensors header: %v", ErrInvalid, path, err)
	}
	var tensors map[string]json.RawMessage
	if err := json.Unmarshal(hdr, &tensors); err != nil {
		return fmt.Errorf("%w: %s: safetensors header is not JSON: %v", ErrInvalid, path, err)
	}
	data := uint64(st.Size()) - 8 - n
	count := 0
	for name, raw := range tensors {
		if name == "__metadata__" {
			continue
		}
		var t struct {
			DataOffsets []uint64 `json:"data_offsets"`
		}
		if err := json.Unmarshal(raw, &t); err != nil || len(t.DataOffsets) != 2 || t.DataOffsets[0] > t.DataOffsets[1] {
			return fmt.Errorf("%w: %s: tensor %q has no valid data_offsets", ErrInvalid, path, name)
		}
		if t.DataOffsets[1] > data {
			return fmt.Errorf("%w: %s is truncated: tensor %q ends at data byte %d of %d", ErrInvalid, path, name, t.DataOffsets[1], data)
		}
		count++
	}
	if count == 0 {
		return fmt.Errorf("%w: %s holds no tensors", ErrInvalid, path)
	}
	return nil
}

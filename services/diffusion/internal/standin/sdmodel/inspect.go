// Package sdmodel decides what a model file is to the stand-ins, and describes the model they
// pretend to load. It is part of the STAND-INS for stable-diffusion.cpp (see package standin),
// not the real engine: it reads headers only and never loads weights.
//
// The rule:
//
//   - the path cannot be stat'ed: NotFound (`file X not found`, exit 1);
//   - a GGUF file (magic "GGUF", version 2 or 3) whose header, key/values and tensor infos parse
//     and whose tensor data all lies inside the file: Valid;
//   - the same, but the tensor data runs past the end of the file: Truncated (the real sd-cli
//     loads, fails to read tensor data and aborts with SIGABRT, exit 134);
//   - a safetensors file (8-byte header length, JSON header) is judged the same way;
//   - anything else, including a directory or a header that is itself cut short: UnknownFormat
//     (`unknown format X`, exit 1).
//
// Whatever valid file it is given, the stand-in prints the description of the model of the
// reference captures (SDXS 512-DS, 610 tensors, 76.02 MB): see Profile.
package sdmodel

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// Kind is the verdict on a model file.
type Kind int

// Verdicts.
const (
	NotFound Kind = iota
	UnknownFormat
	Truncated
	Valid
)

func (k Kind) String() string {
	switch k {
	case NotFound:
		return "not found"
	case UnknownFormat:
		return "unknown format"
	case Truncated:
		return "truncated"
	case Valid:
		return "valid"
	}
	return "?"
}

// Info is what Inspect learned about a file.
type Info struct {
	Kind        Kind
	Format      string // "gguf" or "safetensors" when recognised
	Size        int64  // file size
	TensorCount int
	DataEnd     int64 // offset just past the last tensor's data
}

var errFormat = errors.New("unknown format")

// Inspect classifies the file at path.
func Inspect(path string) Info {
	st, err := os.Stat(path)
	if err != nil {
		return Info{Kind: NotFound}
	}
	info := Info{Kind: UnknownFormat, Size: st.Size()}
	if st.IsDir() {
		return info
	}
	f, err := os.Open(path)
	if err != nil {
		return Info{Kind: NotFound}
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64*1024)
	magic, err := r.Peek(4)
	if err != nil {
		return info
	}
	var n int
	var end int64
	format := "gguf"
	if string(magic) == "GGUF" {
		n, end, err = ggufExtent(r)
	} else {
		format = "safetensors"
		n, end, err = safetensorsExtent(r, st.Size())
	}
	if err != nil {
		return info
	}
	info.Format, info.TensorCount, info.DataEnd = format, n, end
	if end > st.Size() {
		info.Kind = Truncated
	} else {
		info.Kind = Valid
	}
	return info
}

// safetensorsExtent reads a safetensors header: a little-endian uint64 length, then a JSON
// object mapping tensor names to {dtype, shape, data_offsets}.
func safetensorsExtent(r io.Reader, size int64) (int, int64, error) {
	var hlen uint64
	if err := binary.Read(r, binary.LittleEndian, &hlen); err != nil {
		return 0, 0, errFormat
	}
	if hlen < 2 || hlen > 100<<20 || int64(hlen) > size-8 {
		return 0, 0, errFormat
	}
	buf := make([]byte, hlen)
	if _, err := io.ReadFull(r, buf); err != nil || buf[0] != '{' {
		return 0, 0, errFormat
	}
	var hdr map[string]json.RawMessage
	if err := json.Unmarshal(buf, &hdr); err != nil {
		return 0, 0, errFormat
	}
	var n int
	var end int64
	for name, raw := range hdr {
		if name == "__metadata__" {
			continue
		}
		var t struct {
			Dtype   string   `json:"dtype"`
			Offsets []uint64 `json:"data_offsets"`
		}
		if err := json.Unmarshal(raw, &t); err != nil || t.Dtype == "" || len(t.Offsets) != 2 || t.Offsets[1] < t.Offsets[0] {
			return 0, 0, errFormat
		}
		n++
		end = max(end, 8+int64(hlen)+int64(t.Offsets[1]))
	}
	if n == 0 {
		return 0, 0, errFormat
	}
	return n, end, nil
}

// Describe is a short human description, for errors.
func (i Info) Describe() string {
	switch i.Kind {
	case Valid, Truncated:
		return fmt.Sprintf("%s %s file, %d tensors, data ends at %d of %d bytes", i.Kind, i.Format, i.TensorCount, i.DataEnd, i.Size)
	}
	return i.Kind.String()
}

package ggufgen

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// Tensor is one tensor of a Layout.
type Tensor struct {
	Name string
	Dims []uint64 // GGUF order: Dims[0] is the contiguous dimension
	Type TensorType
}

// Layout is a GGUF v3 file of any architecture whose tensor data is all zeros: a model for
// programs that read a file's header and check its extent but never compute with the weights
// (the stable-diffusion.cpp stand-ins, model file checks). Its metadata is
// general.architecture, general.name and general.alignment.
type Layout struct {
	Architecture string // general.architecture
	Name         string // general.name
	Tensors      []Tensor
}

// maxLayoutBytes bounds a Layout's data, as maxTotalBytes bounds a Config's.
const maxLayoutBytes = 1 << 30

// Validate reports whether l can be written: an architecture, at least one tensor, every
// tensor named, with 1 to 4 dimensions, a type this package writes and a whole number of
// blocks, and at most 1 GiB of data.
func (l Layout) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	if l.Architecture == "" {
		return bad("layout without general.architecture")
	}
	if len(l.Tensors) == 0 {
		return bad("layout without tensors")
	}
	var total int64
	for _, t := range l.Tensors {
		elems, _, ok := t.Type.block()
		if !ok {
			return bad("tensor %q: type %v", t.Name, t.Type)
		}
		if t.Name == "" || len(t.Dims) == 0 || len(t.Dims) > 4 {
			return bad("tensor %q: want a name and 1 to 4 dimensions, got %v", t.Name, t.Dims)
		}
		n := int64(1)
		for _, d := range t.Dims {
			if d == 0 || d > maxLayoutBytes {
				return bad("tensor %q: dimension %d", t.Name, d)
			}
			n *= int64(d)
			if n > maxLayoutBytes {
				return bad("tensor %q: %v is too large", t.Name, t.Dims)
			}
		}
		if n%elems != 0 {
			return bad("tensor %q: %d elements are not whole %v blocks of %d", t.Name, n, t.Type, elems)
		}
		if total += n; total > maxLayoutBytes {
			return bad("layout over %d elements", int64(maxLayoutBytes))
		}
	}
	return nil
}

func (l Layout) metadata() []kv {
	return []kv{
		kvString("general.architecture", l.Architecture),
		kvString("general.name", l.Name),
		kvUint32("general.alignment", Alignment),
	}
}

func (l Layout) tensors() []tensor {
	ts := make([]tensor, len(l.Tensors))
	for i, t := range l.Tensors {
		ts[i] = tensor{name: t.Name, dims: t.Dims, typ: t.Type}
	}
	return ts
}

// WriteLayout writes l to w and returns the number of bytes written.
func WriteLayout(w io.Writer, l Layout) (int64, error) {
	if err := l.Validate(); err != nil {
		return 0, err
	}
	bw := bufio.NewWriter(w)
	ts := l.tensors()
	n, err := writeHeader(bw, l.metadata(), ts)
	if err != nil {
		return n, fmt.Errorf("write gguf header: %w", err)
	}
	zeros := make([]byte, 64<<10)
	for left := dataBytes(ts); left > 0 && err == nil; {
		var m int
		m, err = bw.Write(zeros[:min(left, int64(len(zeros)))])
		n, left = n+int64(m), left-int64(m)
	}
	err = errors.Join(err, bw.Flush())
	if err != nil {
		return n, fmt.Errorf("write gguf tensor data: %w", err)
	}
	return n, nil
}

// WriteLayoutFile writes l to path atomically (temporary file in the same directory, then rename).
func WriteLayoutFile(path string, l Layout) error {
	if err := l.Validate(); err != nil {
		return err
	}
	return writeFile(path, func(w io.Writer) (int64, error) { return WriteLayout(w, l) })
}

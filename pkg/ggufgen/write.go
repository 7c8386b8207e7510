package ggufgen

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
)

// pcgStream is the fixed second PCG seed word; the Config.Seed is the first.
const pcgStream = 0x9e3779b97f4a7c15

// Size returns the number of bytes Write produces for the config.
func Size(c Config) (int64, error) {
	if err := c.Validate(); err != nil {
		return 0, err
	}
	c = c.withDefaults()
	n, err := writeHeader(io.Discard, c.metadata(buildVocab(c.VocabPieces)), c.tensors())
	if err != nil {
		return 0, err
	}
	return n + c.tensorBytes(), nil
}

// Write writes the model to w and returns the number of bytes written.
func Write(w io.Writer, c Config) (int64, error) {
	if err := c.Validate(); err != nil {
		return 0, err
	}
	c = c.withDefaults()
	bw := bufio.NewWriterSize(w, 1<<20)
	n, err := writeHeader(bw, c.metadata(buildVocab(c.VocabPieces)), c.tensors())
	if err != nil {
		return n, fmt.Errorf("write gguf header: %w", err)
	}
	m, err := writeData(bw, c)
	n += m
	if err != nil {
		return n, fmt.Errorf("write gguf tensor data: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return n, fmt.Errorf("write gguf: %w", err)
	}
	return n, nil
}

// WriteFile writes the model to path atomically (temporary file in the same directory, then rename).
func WriteFile(path string, c Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	return writeFile(path, func(w io.Writer) (int64, error) { return Write(w, c) })
}

// writeFile writes path atomically with write (mode 0644).
func writeFile(path string, write func(io.Writer) (int64, error)) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write model %s: %w", path, err)
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := write(tmp); err != nil {
		return fmt.Errorf("write model %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write model %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write model %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("write model %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write model %s: %w", path, err)
	}
	ok = true
	return nil
}

// writeHeader writes magic, version, counts, metadata and tensor infos, padded to the alignment.
func writeHeader(w io.Writer, md []kv, ts []tensor) (int64, error) {
	e := &encoder{w: w}
	e.write([]byte(Magic))
	e.u32(Version)
	e.u64(uint64(len(ts)))
	e.u64(uint64(len(md)))
	for _, m := range md {
		e.str(m.key)
		m.value(e)
	}
	var off int64
	for _, t := range ts {
		off = alignUp(off)
		e.str(t.name)
		e.u32(uint32(len(t.dims)))
		for _, d := range t.dims {
			e.u64(d)
		}
		e.u32(uint32(t.typ))
		e.u64(uint64(off))
		off += t.bytes()
	}
	e.pad(Alignment)
	return e.n, e.err
}

// writeData writes every tensor's values (each tensor starting on an aligned offset) from one seeded
// PCG stream, in file order.
func writeData(w io.Writer, c Config) (int64, error) {
	e := &encoder{w: w}
	rng := rand.NewPCG(c.Seed, pcgStream)
	chunk := make([]byte, 0, 64<<10)
	for _, t := range c.tensors() {
		e.pad(Alignment)
		for left := t.elems(); left > 0; {
			chunk = chunk[:0]
			for ; left > 0 && len(chunk)+4 <= cap(chunk); left-- {
				v := float32(1)
				if t.scale != 0 {
					// 24 random bits → [0,1) → [-scale, scale); derived by hand so the bytes do not depend
					// on math/rand's float helpers.
					u := float32(rng.Uint64()>>40) / (1 << 24)
					v = (2*u - 1) * t.scale
				}
				if t.typ == F16 {
					chunk = binary.LittleEndian.AppendUint16(chunk, float16bits(v))
				} else {
					chunk = binary.LittleEndian.AppendUint32(chunk, math.Float32bits(v))
				}
			}
			e.write(chunk)
			if e.err != nil {
				return e.n, e.err
			}
		}
	}
	e.pad(Alignment)
	return e.n, e.err
}

// float16bits converts to IEEE 754 half precision, rounding to nearest even.
func float16bits(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23&0xff) - 127 + 15
	mant := b & 0x7fffff
	switch {
	case b&0x7fffffff == 0:
		return sign
	case b>>23&0xff == 0xff: // Inf or NaN
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	case exp >= 0x1f: // overflow
		return sign | 0x7c00
	case exp <= 0: // subnormal or zero
		if exp < -10 {
			return sign
		}
		mant |= 0x800000
		shift := uint32(14 - exp)
		half := mant >> shift
		rem := mant & (1<<shift - 1)
		mid := uint32(1) << (shift - 1)
		if rem > mid || (rem == mid && half&1 == 1) {
			half++
		}
		return sign | uint16(half)
	}
	half := uint32(exp)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && half&1 == 1) {
		half++ // may carry into the exponent, which is the correct rounding
	}
	return sign | uint16(half)
}

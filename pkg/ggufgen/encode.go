package ggufgen

import (
	"encoding/binary"
	"io"
	"math"
)

// GGUF format constants (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md).
const (
	Magic     = "GGUF"
	Version   = 3
	Alignment = 32
)

// GGUF metadata value types.
const (
	typeUint32  uint32 = 4
	typeInt32   uint32 = 5
	typeFloat32 uint32 = 6
	typeBool    uint32 = 7
	typeString  uint32 = 8
	typeArray   uint32 = 9
)

// encoder writes little-endian GGUF primitives and remembers the first error (bufio-style).
type encoder struct {
	w   io.Writer
	n   int64
	err error
	buf [8]byte
}

func (e *encoder) write(p []byte) {
	if e.err != nil {
		return
	}
	n, err := e.w.Write(p)
	e.n += int64(n)
	e.err = err
}

func (e *encoder) u32(v uint32) {
	binary.LittleEndian.PutUint32(e.buf[:4], v)
	e.write(e.buf[:4])
}

func (e *encoder) u64(v uint64) {
	binary.LittleEndian.PutUint64(e.buf[:8], v)
	e.write(e.buf[:8])
}

func (e *encoder) str(s string) {
	e.u64(uint64(len(s)))
	e.write([]byte(s))
}

func (e *encoder) pad(align int64) {
	if r := e.n % align; r != 0 {
		e.write(make([]byte, align-r))
	}
}

// kv is one metadata entry; value writes the typed value after the key.
type kv struct {
	key   string
	value func(e *encoder)
}

func kvString(key, v string) kv {
	return kv{key, func(e *encoder) { e.u32(typeString); e.str(v) }}
}

func kvUint32(key string, v uint32) kv {
	return kv{key, func(e *encoder) { e.u32(typeUint32); e.u32(v) }}
}

func kvFloat32(key string, v float32) kv {
	return kv{key, func(e *encoder) { e.u32(typeFloat32); e.u32(math.Float32bits(v)) }}
}

func kvBool(key string, v bool) kv {
	return kv{key, func(e *encoder) {
		e.u32(typeBool)
		if v {
			e.write([]byte{1})
		} else {
			e.write([]byte{0})
		}
	}}
}

func kvStrings(key string, v []string) kv {
	return kv{key, func(e *encoder) {
		e.u32(typeArray)
		e.u32(typeString)
		e.u64(uint64(len(v)))
		for _, s := range v {
			e.str(s)
		}
	}}
}

func kvFloat32s(key string, v []float32) kv {
	return kv{key, func(e *encoder) {
		e.u32(typeArray)
		e.u32(typeFloat32)
		e.u64(uint64(len(v)))
		for _, f := range v {
			e.u32(math.Float32bits(f))
		}
	}}
}

func kvInt32s(key string, v []int32) kv {
	return kv{key, func(e *encoder) {
		e.u32(typeArray)
		e.u32(typeInt32)
		e.u64(uint64(len(v)))
		for _, x := range v {
			e.u32(uint32(x))
		}
	}}
}

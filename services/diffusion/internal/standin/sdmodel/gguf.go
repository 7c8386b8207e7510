package sdmodel

import (
	"bufio"
	"encoding/binary"
	"io"
)

// GGUF value types.
const (
	ggufUint8 = iota
	ggufInt8
	ggufUint16
	ggufInt16
	ggufUint32
	ggufInt32
	ggufFloat32
	ggufBool
	ggufString
	ggufArray
	ggufUint64
	ggufInt64
	ggufFloat64
)

var ggufScalarSize = map[uint32]int64{
	ggufUint8: 1, ggufInt8: 1, ggufBool: 1,
	ggufUint16: 2, ggufInt16: 2,
	ggufUint32: 4, ggufInt32: 4, ggufFloat32: 4,
	ggufUint64: 8, ggufInt64: 8, ggufFloat64: 8,
}

// ggmlType is the block size (elements) and block bytes of a ggml tensor type.
type ggmlType struct{ block, bytes int64 }

var ggmlTypes = map[uint32]ggmlType{
	0:  {1, 4},     // F32
	1:  {1, 2},     // F16
	2:  {32, 18},   // Q4_0
	3:  {32, 20},   // Q4_1
	6:  {32, 22},   // Q5_0
	7:  {32, 24},   // Q5_1
	8:  {32, 34},   // Q8_0
	9:  {32, 36},   // Q8_1
	10: {256, 84},  // Q2_K
	11: {256, 110}, // Q3_K
	12: {256, 144}, // Q4_K
	13: {256, 176}, // Q5_K
	14: {256, 210}, // Q6_K
	15: {256, 292}, // Q8_K
	24: {1, 1},     // I8
	25: {1, 2},     // I16
	26: {1, 4},     // I32
	27: {1, 8},     // I64
	28: {1, 8},     // F64
	30: {1, 2},     // BF16
}

// Limits that keep a hostile header from making the stand-in allocate or loop for long.
const (
	maxStringLen = 1 << 20
	maxCount     = 1 << 24
)

type countingReader struct {
	r *bufio.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countingReader) u32() (uint32, error) {
	var v uint32
	err := binary.Read(c, binary.LittleEndian, &v)
	return v, err
}

func (c *countingReader) u64() (uint64, error) {
	var v uint64
	err := binary.Read(c, binary.LittleEndian, &v)
	return v, err
}

func (c *countingReader) skip(n int64) error {
	_, err := io.CopyN(io.Discard, c, n)
	return err
}

func (c *countingReader) str() (string, error) {
	n, err := c.u64()
	if err != nil {
		return "", err
	}
	if n > maxStringLen {
		return "", errFormat
	}
	b := make([]byte, n)
	_, err = io.ReadFull(c, b)
	return string(b), err
}

// value skips (or, for general.alignment, reads) one value of type t.
func (c *countingReader) value(t uint32) (uint64, error) {
	if sz, ok := ggufScalarSize[t]; ok {
		switch sz {
		case 4:
			v, err := c.u32()
			return uint64(v), err
		case 8:
			return c.u64()
		}
		return 0, c.skip(sz)
	}
	switch t {
	case ggufString:
		_, err := c.str()
		return 0, err
	case ggufArray:
		et, err := c.u32()
		if err != nil {
			return 0, err
		}
		n, err := c.u64()
		if err != nil {
			return 0, err
		}
		if n > maxCount {
			return 0, errFormat
		}
		if sz, ok := ggufScalarSize[et]; ok {
			return 0, c.skip(sz * int64(n))
		}
		if et != ggufString {
			return 0, errFormat
		}
		for i := uint64(0); i < n; i++ {
			if _, err := c.str(); err != nil {
				return 0, err
			}
		}
		return 0, nil
	}
	return 0, errFormat
}

// ggufExtent parses a GGUF header and returns the tensor count and the end of the tensor
// data. Any read error means the header itself is unreadable (errFormat).
func ggufExtent(br *bufio.Reader) (int, int64, error) {
	c := &countingReader{r: br}
	if err := c.skip(4); err != nil {
		return 0, 0, errFormat
	}
	version, err := c.u32()
	if err != nil || (version != 2 && version != 3) {
		return 0, 0, errFormat
	}
	nTensors, err := c.u64()
	if err != nil || nTensors > maxCount {
		return 0, 0, errFormat
	}
	nKV, err := c.u64()
	if err != nil || nKV > maxCount {
		return 0, 0, errFormat
	}
	alignment := uint64(32)
	for i := uint64(0); i < nKV; i++ {
		key, err := c.str()
		if err != nil {
			return 0, 0, errFormat
		}
		t, err := c.u32()
		if err != nil {
			return 0, 0, errFormat
		}
		v, err := c.value(t)
		if err != nil {
			return 0, 0, errFormat
		}
		if key == "general.alignment" && t == ggufUint32 {
			if v == 0 || v&(v-1) != 0 {
				return 0, 0, errFormat
			}
			alignment = v
		}
	}
	var dataLen int64
	for i := uint64(0); i < nTensors; i++ {
		if _, err := c.str(); err != nil {
			return 0, 0, errFormat
		}
		nDims, err := c.u32()
		if err != nil || nDims == 0 || nDims > 8 {
			return 0, 0, errFormat
		}
		elems := int64(1)
		for d := uint32(0); d < nDims; d++ {
			n, err := c.u64()
			if err != nil || n > 1<<40 {
				return 0, 0, errFormat
			}
			elems *= int64(n)
			if elems > 1<<44 {
				return 0, 0, errFormat
			}
		}
		typ, err := c.u32()
		if err != nil {
			return 0, 0, errFormat
		}
		gt, ok := ggmlTypes[typ]
		if !ok || elems%gt.block != 0 {
			return 0, 0, errFormat
		}
		off, err := c.u64()
		if err != nil || off > 1<<50 {
			return 0, 0, errFormat
		}
		dataLen = max(dataLen, int64(off)+elems/gt.block*gt.bytes)
	}
	a := int64(alignment)
	start := (c.n + a - 1) / a * a
	return int(nTensors), start + dataLen, nil
}

package sdimage

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image"
	"image/jpeg"
	"image/png"
)

// EncodePNG encodes img as an 8-bit RGB PNG and, when parameters is not empty, adds one tEXt
// chunk with the key `parameters` right after IHDR, as sd.cpp does.
func EncodePNG(img image.Image, parameters string) ([]byte, error) {
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("encode png: %w", err)
	}
	data := buf.Bytes()
	if parameters == "" {
		return data, nil
	}
	const ihdrEnd = 8 + 8 + 13 + 4 // signature, IHDR length+type, IHDR data, CRC
	if len(data) < ihdrEnd || string(data[12:16]) != "IHDR" {
		return nil, fmt.Errorf("encode png: unexpected layout")
	}
	body := append([]byte("parameters\x00"), parameters...)
	chunk := make([]byte, 0, len(body)+12)
	chunk = binary.BigEndian.AppendUint32(chunk, uint32(len(body)))
	chunk = append(chunk, "tEXt"...)
	chunk = append(chunk, body...)
	chunk = binary.BigEndian.AppendUint32(chunk, crc32.ChecksumIEEE(chunk[4:]))
	out := make([]byte, 0, len(data)+len(chunk))
	out = append(out, data[:ihdrEnd]...)
	out = append(out, chunk...)
	return append(out, data[ihdrEnd:]...), nil
}

// EncodeJPEG encodes img as JPEG with the given quality (1..100). sd.cpp's metadata is not
// embedded in JPEG by the stand-in.
func EncodeJPEG(img image.Image, quality int) ([]byte, error) {
	quality = min(100, max(1, quality))
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: quality}); err != nil {
		return nil, fmt.Errorf("encode jpeg: %w", err)
	}
	return buf.Bytes(), nil
}

// TextChunks returns the tEXt chunks of a PNG as keyword -> text.
func TextChunks(data []byte) (map[string]string, error) {
	if len(data) < 8 || string(data[:8]) != "\x89PNG\r\n\x1a\n" {
		return nil, fmt.Errorf("read png chunks: not a PNG")
	}
	out := map[string]string{}
	for p := 8; p+12 <= len(data); {
		n := int(binary.BigEndian.Uint32(data[p:]))
		if n < 0 || p+12+n > len(data) {
			return nil, fmt.Errorf("read png chunks: chunk at %d runs past the end", p)
		}
		typ, body := string(data[p+4:p+8]), data[p+8:p+8+n]
		if typ == "tEXt" {
			if k := bytes.IndexByte(body, 0); k > 0 {
				out[string(body[:k])] = string(body[k+1:])
			}
		}
		p += 12 + n
	}
	return out, nil
}

package sdprogress

import "bytes"

// DefaultMaxLine bounds how many bytes a Parser holds while it waits for a terminator; a longer
// line is emitted in pieces of this size.
const DefaultMaxLine = 64 << 10

// Parser splits a stream of sd.cpp output, fed in chunks of any size as they arrive, into lines
// and bars and hands each to emit as soon as its terminator has arrived: `\n`, `\r` (bars start
// with one, and a pty turns `\n` into `\r\n`), or the `ESC[K` that closes every bar update. Empty
// pieces are skipped. The zero value is ready to use; a Parser is not safe for concurrent use.
type Parser struct {
	// MaxLine overrides DefaultMaxLine when positive.
	MaxLine int

	buf []byte
}

// Feed consumes chunk and calls emit for every line or bar completed by it.
func (p *Parser) Feed(chunk []byte, emit func(Event)) {
	start := 0
	for j := 0; j < len(chunk); {
		k := bytes.IndexAny(chunk[j:], "\r\nK")
		if k < 0 {
			break
		}
		k += j
		switch chunk[k] {
		case '\r', '\n':
			p.emitToken(chunk[start:k], emit)
			start = k + 1
		case 'K':
			if p.precededByCSI(chunk[start:k]) {
				p.emitToken(chunk[start:k+1], emit)
				start = k + 1
			}
		}
		j = k + 1
	}
	rest := chunk[start:]
	max := p.MaxLine
	if max <= 0 {
		max = DefaultMaxLine
	}
	for len(p.buf)+len(rest) > max {
		n := max - len(p.buf)
		p.emitToken(rest[:n], emit)
		rest = rest[n:]
	}
	p.buf = append(p.buf, rest...)
}

// Flush emits what is left of an unterminated line, as at the end of the stream (a process
// killed mid-line).
func (p *Parser) Flush(emit func(Event)) {
	p.emitToken(nil, emit)
}

// precededByCSI reports whether the pending bytes (buffer, then seg) end in `ESC [`.
func (p *Parser) precededByCSI(seg []byte) bool {
	var b1, b2 byte // the last and the one before it
	switch {
	case len(seg) >= 2:
		b2, b1 = seg[len(seg)-2], seg[len(seg)-1]
	case len(seg) == 1:
		b1 = seg[0]
		if len(p.buf) > 0 {
			b2 = p.buf[len(p.buf)-1]
		}
	default:
		if len(p.buf) >= 2 {
			b2, b1 = p.buf[len(p.buf)-2], p.buf[len(p.buf)-1]
		}
	}
	return b2 == 0x1b && b1 == '['
}

func (p *Parser) emitToken(seg []byte, emit func(Event)) {
	tok := seg
	if len(p.buf) > 0 {
		p.buf = append(p.buf, seg...)
		tok = p.buf
	}
	if len(tok) > 0 {
		if ev := ParseLine(tok); ev.Kind != KindText || ev.Text != "" {
			emit(ev)
		}
	}
	p.buf = p.buf[:0]
}

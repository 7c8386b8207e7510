package supervisor

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"time"
)

// lineSink receives the lines cut from one output stream.
type lineSink func(stream Stream, text []byte)

// readOutput reads r until EOF or error, passing every raw read to onChunk
// (if set) and every line cut by split to sink. A line longer than maxLine
// is delivered in pieces of maxLine bytes; nothing is dropped. A split error falls back to ScanLines for the rest.
func readOutput(r io.Reader, stream Stream, split bufio.SplitFunc, maxLine int,
	onChunk func(Stream, []byte), sink lineSink) {
	chunk := make([]byte, 32<<10)
	buf := make([]byte, 0, 4<<10)
	cut := func(atEOF bool) {
		start := 0
		for start < len(buf) {
			adv, tok, err := split(buf[start:], atEOF)
			if err != nil {
				if errors.Is(err, bufio.ErrFinalToken) && adv > 0 && adv <= len(buf)-start {
					if tok != nil {
						sink(stream, tok)
					}
					start += adv
				}
				split = ScanLines // a broken or finished splitter: plain lines from here on
				continue
			}
			if adv <= 0 || adv > len(buf)-start {
				if len(buf)-start > maxLine { // no terminator in sight: cut
					sink(stream, buf[start:start+maxLine])
					start += maxLine
					continue
				}
				break
			}
			for len(tok) > maxLine {
				sink(stream, tok[:maxLine])
				tok = tok[maxLine:]
			}
			if tok != nil {
				sink(stream, tok)
			}
			start += adv
		}
		n := copy(buf, buf[start:])
		buf = buf[:n]
	}
	for {
		n, err := r.Read(chunk)
		if n > 0 {
			if onChunk != nil {
				onChunk(stream, chunk[:n])
			}
			buf = append(buf, chunk[:n]...)
			cut(false)
		}
		if err != nil {
			cut(true)
			if len(buf) > 0 { // a splitter that left data at EOF
				sink(stream, buf)
			}
			return
		}
	}
}

// lineBuilder turns raw line bytes into Lines for one process.
type lineBuilder struct {
	pid   int
	parse Parser
}

func (lb lineBuilder) build(stream Stream, text []byte, now time.Time) Line {
	l := Line{Time: now, Pid: lb.pid, Stream: stream, Text: string(text), Level: slog.LevelInfo}
	l.Message = l.Text
	if lb.parse != nil {
		if lvl, msg, ok := lb.parse(l.Text); ok {
			l.Level, l.Message = lvl, msg
		}
	}
	return l
}

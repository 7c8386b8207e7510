package supervisor

import "bytes"

// ScanLines is the default splitter: lines end at '\n'; a '\r' right before
// it is dropped. A last line without '\n' is delivered at EOF.
func ScanLines(data []byte, atEOF bool) (advance int, token []byte, err error) {
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return i + 1, bytes.TrimSuffix(data[:i], []byte{'\r'}), nil
	}
	if atEOF && len(data) > 0 {
		return len(data), bytes.TrimSuffix(data, []byte{'\r'}), nil
	}
	return 0, nil, nil
}

// eraseLine is the terminal sequence "erase to end of line", which progress
// bars print at the end of each in-place update.
var eraseLine = []byte("\x1b[K")

// ScanTerminal splits output the way a terminal shows it: a segment ends at
// '\n', at '\r' (an in-place update follows) and after ESC[K (the end of an
// in-place update; the sequence itself is dropped). Each segment is delivered
// as soon as its terminator is read, without waiting for a '\n'. Empty
// segments (as between "\r\n" or after "ESC[K\n") are skipped.
func ScanTerminal(data []byte, atEOF bool) (advance int, token []byte, err error) {
	for i := 0; i < len(data); i++ {
		switch data[i] {
		case '\n', '\r':
			return i + 1, nonEmpty(data[:i]), nil
		case 0x1b:
			rest := data[i:]
			if bytes.HasPrefix(rest, eraseLine) {
				return i + len(eraseLine), nonEmpty(data[:i]), nil
			}
			if !atEOF && bytes.HasPrefix(eraseLine, rest) {
				return 0, nil, nil // the sequence may be completed by the next read
			}
		}
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

// nonEmpty returns nil for an empty segment so that it is skipped.
func nonEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

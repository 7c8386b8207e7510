package sdprogress

import (
	"bytes"
	"strconv"
	"strings"
)

// ParseLine classifies one line or bar of sd.cpp output. line is what lies between two
// terminators (`\r`, `\n`, or the `ESC[K` that closes a bar); stray `\r`/`\n` at either end and
// ANSI color escapes are ignored. It never fails: what it does not recognise is KindText.
func ParseLine(line []byte) Event {
	line = bytes.Trim(line, "\r\n")
	if bytes.IndexByte(line, 0x1b) >= 0 {
		line = stripEscapes(line)
	}
	if ev, ok := parseLog(line); ok {
		return ev
	}
	if ev, ok := parseBar(line); ok {
		return ev
	}
	return Event{Kind: KindText, Text: string(line)}
}

// stripEscapes removes ANSI CSI sequences (ESC [ params final-byte) and lone ESC bytes.
func stripEscapes(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] != 0x1b {
			out = append(out, b[i])
			continue
		}
		if i+1 < len(b) && b[i+1] == '[' {
			j := i + 2
			for j < len(b) && (b[j] < 0x40 || b[j] > 0x7e) {
				j++
			}
			i = j // skip the final byte too (loop increments past it)
		}
	}
	return out
}

var levels = map[string]Level{
	"DEBUG": LevelDebug,
	"INFO ": LevelInfo,
	"WARN ": LevelWarn,
	"ERROR": LevelError,
}

// parseLog parses `[LEVEL] file:LINE - message`, where the file column is `%s:%-4d`.
func parseLog(b []byte) (Event, bool) {
	if len(b) < 8 || b[0] != '[' || b[6] != ']' || b[7] != ' ' {
		return Event{}, false
	}
	level, ok := levels[string(b[1:6])]
	if !ok {
		return Event{}, false
	}
	rest := b[8:]
	colon := bytes.IndexByte(rest, ':')
	if colon <= 0 {
		return Event{}, false
	}
	file := rest[:colon]
	rest = rest[colon+1:]
	n := 0
	for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
		n++
	}
	if n == 0 {
		return Event{}, false
	}
	lineNo, _ := strconv.Atoi(string(rest[:n]))
	rest = rest[n:]
	i := 0
	for i < len(rest) && rest[i] == ' ' {
		i++
	}
	if i == 0 || i >= len(rest) || rest[i] != '-' {
		return Event{}, false
	}
	rest = rest[i+1:]
	if len(rest) > 0 && rest[0] == ' ' {
		rest = rest[1:]
	}
	ev := Event{
		Kind:    KindLog,
		Text:    string(b),
		Level:   level,
		File:    string(file),
		Line:    lineNo,
		Message: string(rest),
	}
	parseMarker(&ev)
	return ev, true
}

// parseBar parses `  |<cells>| cur/total - <rate><unit>`.
func parseBar(b []byte) (Event, bool) {
	s := bytes.TrimLeft(b, " ")
	if len(s) < 2 || s[0] != '|' {
		return Event{}, false
	}
	end := bytes.IndexByte(s[1:], '|')
	if end < 0 {
		return Event{}, false
	}
	cells := s[1 : 1+end]
	rest := s[2+end:]
	if len(rest) == 0 || rest[0] != ' ' {
		return Event{}, false
	}
	cur, rest, ok := leadingInt(rest[1:])
	if !ok || len(rest) == 0 || rest[0] != '/' {
		return Event{}, false
	}
	total, rest, ok := leadingInt(rest[1:])
	if !ok || !bytes.HasPrefix(rest, []byte(" - ")) {
		return Event{}, false
	}
	speed := rest[3:]
	ev := Event{Text: string(b), Current: cur, Total: total}
	for _, unit := range [...]string{"it/s", "s/it", "MB/s", "GB/s", "KB/s", "B/s"} {
		if bytes.HasSuffix(speed, []byte(unit)) {
			ev.Unit = unit
			ev.Rate, _ = strconv.ParseFloat(string(speed[:len(speed)-len(unit)]), 64)
			break
		}
	}
	switch {
	case ev.Unit == "it/s" || ev.Unit == "s/it":
		ev.Kind = KindStepBar
	case ev.Unit != "":
		ev.Kind = KindLoadBar
	case bytes.IndexByte(cells, '#') >= 0:
		ev.Kind = KindLoadBar
	default:
		ev.Kind = KindStepBar
	}
	return ev, true
}

func leadingInt(b []byte) (int, []byte, bool) {
	n := 0
	for n < len(b) && b[n] >= '0' && b[n] <= '9' {
		n++
	}
	if n == 0 || n > 9 {
		return 0, b, false
	}
	v, err := strconv.Atoi(string(b[:n]))
	return v, b[n:], err == nil
}

// parseMarker recognises the stage markers in a log message and fills their arguments.
func parseMarker(ev *Event) {
	m := strings.TrimRight(ev.Message, " ")
	switch {
	case strings.HasPrefix(m, "loading model from '") && strings.HasSuffix(m, "'"):
		ev.Marker = MarkerLoadingModel
		ev.Path = m[len("loading model from '") : len(m)-1]
	case strings.HasPrefix(m, "listening on: "):
		ev.Marker = MarkerListening
		ev.Value = m[len("listening on: "):]
	case strings.HasPrefix(m, "align generation request up "):
		// align generation request up 60x64 to 64x64 (multiple=64)
		if _, after, ok := strings.Cut(m, " to "); ok {
			size, _, _ := strings.Cut(after, " ")
			if w, h, ok := parseSize(size); ok {
				ev.Marker, ev.Width, ev.Height = MarkerAligned, w, h
			}
		}
	case strings.HasPrefix(m, "generate_image completed in "):
		ev.Marker = MarkerGenerateCompleted
		ev.Seconds = parseSeconds(m[len("generate_image completed in "):])
	case strings.HasPrefix(m, "generate_image "):
		if w, h, ok := parseSize(m[len("generate_image "):]); ok {
			ev.Marker, ev.Width, ev.Height = MarkerGenerateStart, w, h
		}
	case strings.HasPrefix(m, "sampling using ") && strings.HasSuffix(m, " method"):
		ev.Marker = MarkerSamplingMethod
		ev.Value = m[len("sampling using ") : len(m)-len(" method")]
	case strings.HasPrefix(m, "get_learned_condition completed, taking "):
		ev.Marker = MarkerConditioned
		ev.Seconds = parseSeconds(m[len("get_learned_condition completed, taking "):])
	case strings.HasPrefix(m, "generating image: "):
		// generating image: 1/1 - seed 42
		rest := m[len("generating image: "):]
		frac, seed, ok := strings.Cut(rest, " - seed ")
		if !ok {
			return
		}
		i, n, ok := strings.Cut(frac, "/")
		if !ok {
			return
		}
		idx, err1 := strconv.Atoi(i)
		cnt, err2 := strconv.Atoi(n)
		s, err3 := strconv.ParseInt(seed, 10, 64)
		if err1 == nil && err2 == nil && err3 == nil {
			ev.Marker, ev.Index, ev.Count, ev.Seed = MarkerGeneratingImage, idx, cnt, s
		}
	case strings.HasPrefix(m, "sampling completed, taking "):
		ev.Marker = MarkerSamplingCompleted
		ev.Seconds = parseSeconds(m[len("sampling completed, taking "):])
	case strings.HasPrefix(m, "decoding ") && (strings.HasSuffix(m, " latents") || strings.HasSuffix(m, " latent")):
		n := strings.TrimSuffix(strings.TrimSuffix(m[len("decoding "):], " latents"), " latent")
		if c, err := strconv.Atoi(n); err == nil {
			ev.Marker, ev.Count = MarkerDecoding, c
		}
	case strings.HasPrefix(m, "decode_first_stage completed, taking "):
		ev.Marker = MarkerDecodeCompleted
		ev.Seconds = parseSeconds(m[len("decode_first_stage completed, taking "):])
	case strings.HasPrefix(m, "save result image "):
		// save result image 0 to 'PATH' (success)
		rest := m[len("save result image "):]
		i, rest, ok := strings.Cut(rest, " to '")
		if !ok {
			return
		}
		q := strings.LastIndex(rest, "' (")
		if q < 0 || !strings.HasSuffix(rest, ")") {
			return
		}
		idx, err := strconv.Atoi(i)
		if err != nil {
			return
		}
		ev.Marker, ev.Index, ev.Path = MarkerSaved, idx, rest[:q]
		ev.Success = rest[q+3:len(rest)-1] == "success"
	}
}

func parseSize(s string) (int, int, bool) {
	w, h, ok := strings.Cut(s, "x")
	if !ok {
		return 0, 0, false
	}
	wi, err1 := strconv.Atoi(w)
	hi, err2 := strconv.Atoi(h)
	return wi, hi, err1 == nil && err2 == nil
}

func parseSeconds(s string) float64 {
	v, _ := strconv.ParseFloat(strings.TrimSuffix(s, "s"), 64)
	return v
}

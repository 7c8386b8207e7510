// Package llamalog parses llama-server's stderr log lines.
//
// llama-server (llama.cpp common/log) writes every log line to stderr as
//
//	M.SS.mmm.uuu L [module] func: message
//
// where M.SS.mmm.uuu is minutes.seconds.milliseconds.microseconds since the process started logging, L is
// the level (D debug, I info, W warning, E error), module is an optional short tag ("srv", "cmn", "slot")
// and func the (possibly truncated) C++ function name. Some lines have no prefix at all: the continuation
// lines of multi-line messages (the chat template example at -lv 4) and messages printed directly, like
// "Received second interrupt, terminating immediately.". Parsing is pure; the fixtures under testdata/ are
// transcripts of the real binary (see testdata/capture).
package llamalog

import (
	"log/slog"
	"strings"
	"time"
)

// Level is a llama-server log level.
type Level int

// Levels. LevelNone marks lines without the timestamp/level prefix.
const (
	LevelNone Level = iota
	LevelDebug
	LevelInfo
	LevelWarn
	LevelError
)

func (l Level) String() string {
	switch l {
	case LevelDebug:
		return "DEBUG"
	case LevelInfo:
		return "INFO"
	case LevelWarn:
		return "WARN"
	case LevelError:
		return "ERROR"
	}
	return "NONE"
}

// Slog maps the level to a slog level; LevelNone maps to info.
func (l Level) Slog() slog.Level {
	switch l {
	case LevelDebug:
		return slog.LevelDebug
	case LevelWarn:
		return slog.LevelWarn
	case LevelError:
		return slog.LevelError
	}
	return slog.LevelInfo
}

// Line is one parsed stderr line.
type Line struct {
	// Prefixed reports whether the line had the "M.SS.mmm.uuu L" prefix.
	Prefixed bool
	// Offset is the time since llama-server started logging (only when Prefixed).
	Offset time.Duration
	// Level is the line's level (LevelNone when not Prefixed and not given one by a Parser).
	Level Level
	// Module is the short subsystem tag ("srv", "cmn", "slot"), empty when absent.
	Module string
	// Func is the function name before the first ": " (may be truncated by llama-server), empty when absent.
	Func string
	// Message is the text after "func: ", or after the prefix when there is no function, or the whole line
	// when there is no prefix. Trailing spaces, '\r' and '\n' are removed.
	Message string
	// Continuation reports that a Parser gave an unprefixed line the level of the line before it.
	Continuation bool
}

// Text is the message with its function, as llama-server printed it after the module.
func (l Line) Text() string {
	if l.Func == "" {
		return l.Message
	}
	return l.Func + ": " + l.Message
}

// Parse parses one line (without or with its trailing newline). It never fails: anything it does not
// recognize is an unprefixed line whose Message is the line.
func Parse(line string) Line {
	line = strings.TrimRight(line, " \r\n")
	off, rest, ok := parseTimestamp(line)
	if !ok || rest == "" || len(rest) > 1 && rest[1] != ' ' {
		return Line{Message: line}
	}
	lvl, ok := parseLevel(rest[0])
	if !ok {
		return Line{Message: line}
	}
	l := Line{Prefixed: true, Offset: off, Level: lvl}
	if len(rest) < 2 {
		return l
	}
	body := strings.TrimLeft(rest[2:], " ")
	// Optional module: a lowercase tag followed by spaces and a "func:" token.
	if tag, after, found := strings.Cut(body, " "); found && isModule(tag) {
		after = strings.TrimLeft(after, " ")
		if fn, _, ok := cutFunc(after); ok && fn != "" {
			l.Module = tag
			body = after
		}
	}
	if fn, msg, ok := cutFunc(body); ok {
		l.Func, l.Message = fn, msg
	} else {
		l.Message = body
	}
	return l
}

// parseTimestamp reads "M.SS.mmm.uuu " (M has 1 to 7 digits) and returns the rest after the space.
func parseTimestamp(s string) (time.Duration, string, bool) {
	var fields [4]int64
	widths := [4]int{0, 2, 3, 3} // 0: any width ≥ 1
	i := 0
	for f := 0; f < 4; f++ {
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			fields[f] = fields[f]*10 + int64(s[i]-'0')
			i++
			if i-start > 7 { // 10^7 minutes is 19 years; more would overflow a Duration
				return 0, "", false
			}
		}
		n := i - start
		if n == 0 || widths[f] != 0 && n != widths[f] {
			return 0, "", false
		}
		sep := byte('.')
		if f == 3 {
			sep = ' '
		}
		if i >= len(s) || s[i] != sep {
			return 0, "", false
		}
		i++
	}
	d := time.Duration(fields[0])*time.Minute + time.Duration(fields[1])*time.Second +
		time.Duration(fields[2])*time.Millisecond + time.Duration(fields[3])*time.Microsecond
	return d, s[i:], true
}

func parseLevel(c byte) (Level, bool) {
	switch c {
	case 'D':
		return LevelDebug, true
	case 'I':
		return LevelInfo, true
	case 'W':
		return LevelWarn, true
	case 'E':
		return LevelError, true
	}
	return LevelNone, false
}

func isModule(s string) bool {
	if s == "" || len(s) > 8 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 'a' || s[i] > 'z' {
			return false
		}
	}
	return true
}

// cutFunc splits "name: message" where name is a C++-ish identifier (letters, digits, '_', "()", "::",
// '~', '<', '>'). A line ending in "name:" has an empty message.
func cutFunc(s string) (fn, msg string, ok bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ':' && i+1 < len(s) && s[i+1] == ':': // C++ scope
			i++
		case c == ':' && (i+1 == len(s) || s[i+1] == ' '):
			if i == 0 {
				return "", "", false
			}
			return s[:i], strings.TrimLeft(s[min(i+1, len(s)):], " "), true
		case c == '_' || c == '(' || c == ')' || c == '~' || c == '<' || c == '>' ||
			c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9':
		default:
			return "", "", false
		}
	}
	return "", "", false
}

// Parser parses a stream of lines, giving an unprefixed line the level of the prefixed line before it
// (multi-line messages). The zero value is ready; a Parser is not safe for concurrent use.
type Parser struct {
	last Level
}

// Parse parses the next line of the stream.
func (p *Parser) Parse(line string) Line {
	l := Parse(line)
	if l.Prefixed {
		p.last = l.Level
	} else if p.last != LevelNone {
		l.Level, l.Continuation = p.last, true
	}
	return l
}

// Package sdlog writes log lines the way stable-diffusion.cpp's sd-cli and sd-server do. It is
// part of the STAND-INS for stable-diffusion.cpp (see package standin), not the real engine.
//
// A line is `[LEVEL] file:LINE - message\n`: LEVEL is left-aligned in 5 columns (`INFO `,
// `WARN `, `DEBUG`, `ERROR`), the line number is `%-4d`, and a `\n` is added only when the
// message lacks one. ERROR lines go to stderr, everything else to stdout; DEBUG lines are
// printed only in verbose mode. With color, only the tag is wrapped: `\e[34;1m[INFO ]\e[0m `.
package sdlog

import (
	"fmt"
	"io"
	"strings"
)

// Level is a log level of sd.cpp.
type Level int

// The levels sd.cpp prints.
const (
	Debug Level = iota
	Info
	Warn
	Error
)

func (l Level) tag() (string, int) {
	switch l {
	case Debug:
		return "DEBUG", 37
	case Info:
		return "INFO", 34
	case Warn:
		return "WARN", 35
	case Error:
		return "ERROR", 31
	}
	return "?????", 33
}

// Site is the source location sd.cpp prints: the base name of the file and the line number.
type Site struct {
	File string
	Line int
}

// Logger formats and writes log lines. Out receives every level but ERROR, Err receives ERROR.
// Each line is written with a single Write, as sd.cpp flushes after every line.
type Logger struct {
	Out, Err io.Writer
	Verbose  bool
	Color    bool
}

// Format returns the bytes of one log line, without color.
func Format(level Level, at Site, format string, args ...any) string {
	return format1(level, false, at, format, args...)
}

func format1(level Level, color bool, at Site, format string, args ...any) string {
	var b strings.Builder
	name, code := level.tag()
	if color {
		fmt.Fprintf(&b, "\x1b[%d;1m[%-5s]\x1b[0m ", code, name)
	} else {
		fmt.Fprintf(&b, "[%-5s] ", name)
	}
	fmt.Fprintf(&b, "%s:%-4d - ", at.File, at.Line)
	if len(args) == 0 {
		b.WriteString(format)
	} else {
		fmt.Fprintf(&b, format, args...)
	}
	if !strings.HasSuffix(b.String(), "\n") {
		b.WriteByte('\n')
	}
	return b.String()
}

// Log writes one line at the given level.
func (l *Logger) Log(level Level, at Site, format string, args ...any) {
	if level == Debug && !l.Verbose {
		return
	}
	w := l.Out
	if level == Error {
		w = l.Err
	}
	_, _ = io.WriteString(w, format1(level, l.Color, at, format, args...))
}

// Debugf logs at DEBUG (only in verbose mode).
func (l *Logger) Debugf(at Site, format string, args ...any) { l.Log(Debug, at, format, args...) }

// Infof logs at INFO.
func (l *Logger) Infof(at Site, format string, args ...any) { l.Log(Info, at, format, args...) }

// Warnf logs at WARN.
func (l *Logger) Warnf(at Site, format string, args ...any) { l.Log(Warn, at, format, args...) }

// Errorf logs at ERROR, on stderr.
func (l *Logger) Errorf(at Site, format string, args ...any) { l.Log(Error, at, format, args...) }

// Raw writes text to stdout as it is (help text, parameter dumps, progress bars).
func (l *Logger) Raw(s string) { _, _ = io.WriteString(l.Out, s) }

// RawErr writes text to stderr as it is.
func (l *Logger) RawErr(s string) { _, _ = io.WriteString(l.Err, s) }

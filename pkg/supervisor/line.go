package supervisor

import (
	"log/slog"
	"time"
)

// Stream tells which output a line came from.
type Stream int

// Streams.
const (
	// Service is not the process's output: a line the supervising service
	// wrote itself next to it (the supervisor never sets it).
	Service Stream = 0
	Stdout  Stream = 1
	Stderr  Stream = 2
)

func (s Stream) String() string {
	switch s {
	case Stdout:
		return "stdout"
	case Stderr:
		return "stderr"
	case Service:
		return "service"
	}
	return "unknown"
}

// Line is one line (or, with a terminal splitter, one in-place update) of
// process output.
type Line struct {
	Time   time.Time
	Pid    int
	Stream Stream
	// Text is the raw line without its terminator.
	Text string
	// Level and Message are what the Spec's Parser made of Text; without a
	// parser (or when it does not recognise the line) Level is Info and
	// Message is Text.
	Level   slog.Level
	Message string
}

// Parser turns an engine's log line into a level and a message. It must be a
// pure function; ok == false means the line has no recognised format.
type Parser func(text string) (level slog.Level, message string, ok bool)

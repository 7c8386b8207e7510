package llamalog

import "strings"

// Event is a log line a supervisor reacts to.
type Event int

// Events recognized by Classify, from the messages of the real binary (see testdata/).
const (
	EventNone Event = iota
	// EventLoadingModel: "load_model: loading model '<path>'".
	EventLoadingModel
	// EventModelLoaded: "llama_server: model loaded".
	EventModelLoaded
	// EventListening: "llama_server: listening on http://HOST:PORT"; logged after the model loaded (the
	// socket itself is bound before loading, when /health answers 503). Detail is the URL.
	EventListening
	// EventBindFailed: "start: couldn't bind HTTP server socket, hostname: H, port: P"; exit 1 follows.
	EventBindFailed
	// EventModelLoadFailed: "llama_server: exiting due to model loading error"; exit 1 follows.
	EventModelLoadFailed
	// EventServerFailed: "llama_server: exiting due to <other> error" (HTTP server error after a bind
	// failure, for example).
	EventServerFailed
	// EventShuttingDown: "operator(): cleaning up before exit..." (first SIGTERM/SIGINT received).
	EventShuttingDown
	// EventForcedExit: "Received second interrupt, terminating immediately." (unprefixed).
	EventForcedExit
)

func (e Event) String() string {
	switch e {
	case EventLoadingModel:
		return "loading-model"
	case EventModelLoaded:
		return "model-loaded"
	case EventListening:
		return "listening"
	case EventBindFailed:
		return "bind-failed"
	case EventModelLoadFailed:
		return "model-load-failed"
	case EventServerFailed:
		return "server-failed"
	case EventShuttingDown:
		return "shutting-down"
	case EventForcedExit:
		return "forced-exit"
	}
	return "none"
}

// Classify recognizes the lifecycle lines; detail is the URL for EventListening and the message otherwise.
func Classify(l Line) (ev Event, detail string) {
	m := l.Message
	switch {
	case !l.Prefixed && strings.HasPrefix(m, "Received second interrupt"):
		return EventForcedExit, m
	case !l.Prefixed:
		return EventNone, ""
	case l.Func == "llama_server" && strings.HasPrefix(m, "listening on "):
		return EventListening, strings.TrimSpace(strings.TrimPrefix(m, "listening on "))
	case l.Func == "llama_server" && m == "model loaded":
		return EventModelLoaded, m
	case l.Func == "load_model" && strings.HasPrefix(m, "loading model"):
		return EventLoadingModel, m
	case strings.HasPrefix(m, "couldn't bind HTTP server socket"):
		return EventBindFailed, m
	case l.Func == "llama_server" && m == "exiting due to model loading error":
		return EventModelLoadFailed, m
	case l.Func == "llama_server" && strings.HasPrefix(m, "exiting due to "):
		return EventServerFailed, m
	case strings.HasSuffix(m, "cleaning up before exit..."):
		return EventShuttingDown, m
	}
	return EventNone, ""
}

// Cause explains a failed start from the parsed log: the first error line (llama.cpp reports the root cause
// first, e.g. "gguf_init_from_reader: invalid magic characters: 'this', expected 'GGUF'") and, when
// different, the last one (its conclusion, e.g. "exiting due to model loading error"). It returns "" when
// there are no error lines.
func Cause(lines []Line) string {
	var first, last *Line
	for i := range lines {
		if lines[i].Prefixed && lines[i].Level == LevelError {
			if first == nil {
				first = &lines[i]
			}
			last = &lines[i]
		}
	}
	switch {
	case first == nil:
		return ""
	case first == last || first.Text() == last.Text():
		return first.Text()
	}
	return last.Message + ": " + first.Text()
}

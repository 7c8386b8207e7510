package sdprogress

// Kind says what a parsed line is.
type Kind uint8

const (
	// KindText is a line that is neither a log line nor a bar (help text, gdb backtraces, the
	// `terminate called ...` of an uncaught C++ exception).
	KindText Kind = iota
	// KindLog is a `[LEVEL] file:LINE - message` line.
	KindLog
	// KindLoadBar is a weight-loading bar (`#` cells, MB/s or GB/s).
	KindLoadBar
	// KindStepBar is a sampling-step bar (`=` cells with a `>` head, it/s or s/it).
	KindStepBar
)

func (k Kind) String() string {
	switch k {
	case KindLog:
		return "log"
	case KindLoadBar:
		return "load-bar"
	case KindStepBar:
		return "step-bar"
	default:
		return "text"
	}
}

// Level is the severity of a log line.
type Level uint8

const (
	LevelUnknown Level = iota
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
	default:
		return "UNKNOWN"
	}
}

// Marker is a log message that marks a point in a generation.
type Marker uint8

const (
	MarkerNone Marker = iota
	// MarkerLoadingModel: `loading model from 'PATH'` (Path).
	MarkerLoadingModel
	// MarkerListening: sd-server's `listening on: URL` (Value).
	MarkerListening
	// MarkerAligned: `align generation request up WxH to WxH (multiple=64)`; Width and Height
	// are the size that will really be generated.
	MarkerAligned
	// MarkerGenerateStart: `generate_image WxH`, the first line of every generation (also in
	// sd-server, which prints no per-request lines).
	MarkerGenerateStart
	// MarkerSamplingMethod: `sampling using NAME method` (Value).
	MarkerSamplingMethod
	// MarkerConditioned: `get_learned_condition completed, taking Xs` (Seconds).
	MarkerConditioned
	// MarkerGeneratingImage: `generating image: I/N - seed S` (Index, Count, Seed).
	MarkerGeneratingImage
	// MarkerSamplingCompleted: `sampling completed, taking Xs` (Seconds).
	MarkerSamplingCompleted
	// MarkerDecoding: `decoding N latents` (Count).
	MarkerDecoding
	// MarkerDecodeCompleted: `decode_first_stage completed, taking Xs` (Seconds).
	MarkerDecodeCompleted
	// MarkerGenerateCompleted: `generate_image completed in Xs` (Seconds).
	MarkerGenerateCompleted
	// MarkerSaved: `save result image I to 'PATH' (success|failure)` (Index, Path, Success).
	MarkerSaved
)

var markerNames = [...]string{
	MarkerNone:              "none",
	MarkerLoadingModel:      "loading-model",
	MarkerListening:         "listening",
	MarkerAligned:           "aligned",
	MarkerGenerateStart:     "generate-start",
	MarkerSamplingMethod:    "sampling-method",
	MarkerConditioned:       "conditioned",
	MarkerGeneratingImage:   "generating-image",
	MarkerSamplingCompleted: "sampling-completed",
	MarkerDecoding:          "decoding",
	MarkerDecodeCompleted:   "decode-completed",
	MarkerGenerateCompleted: "generate-completed",
	MarkerSaved:             "saved",
}

func (m Marker) String() string {
	if int(m) < len(markerNames) {
		return markerNames[m]
	}
	return "unknown"
}

// Event is one parsed line or bar. Which fields are set depends on Kind and Marker; the rest
// are zero.
type Event struct {
	Kind Kind
	// Text is the line without its terminator and without color escapes.
	Text string

	// Log lines.
	Level   Level
	File    string
	Line    int
	Message string
	Marker  Marker

	// Marker arguments. Value is the URL of MarkerListening or the method name of
	// MarkerSamplingMethod.
	Value         string
	Path          string
	Width, Height int
	Index, Count  int
	Seed          int64
	Seconds       float64
	Success       bool

	// Bars: Current of Total, and the speed of the latest update in Unit ("it/s", "s/it",
	// "MB/s", "GB/s").
	Current, Total int
	Rate           float64
	Unit           string
}

// StepDuration is the duration of the latest step that a step bar reports, in seconds, or 0 when
// the bar carries no usable speed.
func (e Event) StepDuration() float64 {
	if e.Kind != KindStepBar || e.Rate <= 0 {
		return 0
	}
	if e.Unit == "s/it" {
		return e.Rate
	}
	return 1 / e.Rate
}

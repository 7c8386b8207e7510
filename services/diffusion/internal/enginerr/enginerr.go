// Package enginerr holds the domain errors of the diffusion engines. They are mapped to gRPC
// codes and HTTP statuses only at the service's edges.
package enginerr

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrBusy: a generation is already in progress on this engine (one at a time; the
	// orchestrator queues, the engine does not).
	// The text is the seed's exact HTTP error message.
	//lint:ignore ST1005 the seed contract's 503 body is {"error":"Server is busy generating another image"}, capital S included; clients match this exact text
	ErrBusy = errors.New("Server is busy generating another image")
	// ErrNotRunning: the engine is stopped (or crashed) and must be started first.
	ErrNotRunning = errors.New("diffusion engine is not running")
	// ErrAlreadyRunning: Start on a running engine.
	ErrAlreadyRunning = errors.New("diffusion engine is already running")
	// ErrNoEngine: no sd.cpp binary was found; the message says how to configure one.
	ErrNoEngine = errors.New("no stable-diffusion.cpp binary available")
	// ErrModelMissing: a model file does not exist (or is not a regular file).
	ErrModelMissing = errors.New("model file not found")
	// ErrNoOutput: the engine reported success but produced no image.
	ErrNoOutput = errors.New("engine produced no image")
	// ErrBadImage: the engine's image is not a valid PNG of the requested size.
	ErrBadImage = errors.New("engine produced an invalid image")
	// ErrEngineFailed: the engine reported a failed generation (sd-server job status failed).
	ErrEngineFailed = errors.New("image generation failed")
	// ErrOutOfMemory: the engine failed to allocate memory (ggml's "failed to allocate",
	// CUDA's "out of memory"). An *ExitError whose lines say so matches it.
	ErrOutOfMemory = errors.New("engine ran out of memory")
	// ErrUnsupported: the request asks for a feature (previews, edits, a batch that large)
	// that the engine cannot run in its current mode; the message names the mode.
	ErrUnsupported = errors.New("not supported by this engine")
	// ErrStalled: the engine printed nothing for longer than the stall timeout and was
	// killed. It matches context.DeadlineExceeded with errors.Is.
	ErrStalled error = stalled{}
)

// ErrCancelled: the generation was cancelled (CancelGeneration, Stop, or the caller went
// away). It matches context.Canceled; its text is what clients are shown.
var ErrCancelled error = cancelled{}

type cancelled struct{}

func (cancelled) Error() string        { return "generation cancelled" }
func (cancelled) Is(target error) bool { return target == context.Canceled }

type stalled struct{}

func (stalled) Error() string        { return "engine stalled (no progress)" }
func (stalled) Is(target error) bool { return target == context.DeadlineExceeded }
func (stalled) Timeout() bool        { return true }

// ExitError is an engine process that ended with a non-zero status or a signal.
type ExitError struct {
	Program string
	// Code is the exit code, or -1 when Signal is set.
	Code   int
	Signal string
	// Lines are the last lines the process printed on stderr (or, when stderr was empty,
	// on stdout), oldest first.
	Lines []string
}

// Is matches ErrOutOfMemory when the process's last lines report a failed allocation.
func (e *ExitError) Is(target error) bool {
	return target == ErrOutOfMemory && MentionsOutOfMemory(e.Lines)
}

// MentionsOutOfMemory reports whether engine output lines report a failed allocation.
func MentionsOutOfMemory(lines []string) bool {
	for _, l := range lines {
		if strings.Contains(l, "out of memory") || strings.Contains(l, "failed to allocate") {
			return true
		}
	}
	return false
}

func (e *ExitError) Error() string {
	var b strings.Builder
	if e.Signal != "" {
		fmt.Fprintf(&b, "%s was killed by %s", e.Program, e.Signal)
	} else {
		fmt.Fprintf(&b, "%s exited with code %d", e.Program, e.Code)
	}
	if len(e.Lines) > 0 {
		b.WriteString(": ")
		b.WriteString(strings.Join(e.Lines, " | "))
	}
	return b.String()
}

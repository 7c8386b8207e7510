package engine

import (
	"fmt"
	"time"

	"github.com/genailab/genailab/services/diffusion/internal/sdargs"
)

// Mode selects how stable-diffusion.cpp is run.
type Mode uint8

const (
	// ModeCLI runs one sd-cli process per image.
	ModeCLI Mode = iota + 1
	// ModeServer runs one persistent sd-server.
	ModeServer
)

func (m Mode) String() string {
	switch m {
	case ModeCLI:
		return "cli"
	case ModeServer:
		return "server"
	default:
		return fmt.Sprintf("mode(%d)", m)
	}
}

// Config is how an engine is started.
type Config struct {
	Mode    Mode
	ModelID string
	// Model are the model's files, resolved from ModelID by the caller.
	Model   sdargs.Model
	Threads int
	// Port of sd-server; 0 picks a free loopback port.
	Port   int
	Memory sdargs.Memory
	// ReadyTimeout bounds the wait for sd-server to accept connections; 0 uses the engine's
	// default.
	ReadyTimeout time.Duration
}

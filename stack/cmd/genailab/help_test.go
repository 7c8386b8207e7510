package main

import (
	"testing"

	"github.com/genailab/genailab/pkg/cmdmain/cmdmaintest"
)

// genailab -h and --help print the usage and exit 0 (they exited 2).
func TestHelpExitsZero(t *testing.T) {
	cmdmaintest.HelpExitsZero(t, main, "usage: genailab up")
}

// genailab up -h and --help print the flags and exit 0 (they exited 1 with "flag: help requested").
func TestUpHelpExitsZero(t *testing.T) {
	cmdmaintest.HelpExitsZero(t, main, "-diffusion-model-file", "up")
}

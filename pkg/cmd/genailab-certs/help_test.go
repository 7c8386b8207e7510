package main

import (
	"testing"

	"github.com/genailab/genailab/pkg/cmdmain/cmdmaintest"
)

// genailab-certs -h and --help print the usage and exit 0.
func TestHelpExitsZero(t *testing.T) {
	cmdmaintest.HelpExitsZero(t, main, "genailab-certs ca")
}

// A command's -h prints its flags and exits 0 (it exited 2).
func TestCAHelpExitsZero(t *testing.T) {
	cmdmaintest.HelpExitsZero(t, main, "-cn", "ca")
}

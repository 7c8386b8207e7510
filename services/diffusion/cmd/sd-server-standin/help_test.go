package main

import (
	"testing"

	"github.com/genailab/genailab/pkg/cmdmain/cmdmaintest"
)

// -h and --help print the usage and exit 0.
func TestHelpExitsZero(t *testing.T) {
	cmdmaintest.HelpExitsZero(t, main, "Usage:")
}

// Command realsd tells the browser tests (stack.mjs) where the real stable-diffusion.cpp and
// its tiny test model are, with the project's one test-environment policy (pkg/testenv):
// GENAILAB_SDCPP_DIR, else ../shared/engines/sdcpp/bin beside the repository; the tiny
// random-weight model generated once per machine into the test cache and checked by its
// sha256. Run it inside the repository:
//
//	go run ./e2e/realsd   (from clients/web)
//
// It prints one JSON document on stdout and exits 0:
//
//	{"dir": "...", "cli": ".../sd-cli", "server": ".../sd-server", "model": ".../tinysd-....gguf", "modelId": "tinysd-..."}
//
// or, when the engine (or the model's generator) is not available here, {"missing": "why"}:
// the caller decides (GENAILAB_REQUIRE_SDCPP=1 makes it a failure). Any other error (a broken
// configuration, a failed model generation) goes to stderr with exit status 1.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/genailab/genailab/pkg/testenv"
)

type found struct {
	Dir     string `json:"dir,omitempty"`
	CLI     string `json:"cli,omitempty"`
	Server  string `json:"server,omitempty"`
	Model   string `json:"model,omitempty"`
	ModelID string `json:"modelId,omitempty"`
	Missing string `json:"missing,omitempty"`
}

func main() {
	out, err := find()
	if err != nil {
		fmt.Fprintln(os.Stderr, "realsd:", err)
		os.Exit(1)
	}
	enc := json.NewEncoder(os.Stdout)
	if err := enc.Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, "realsd:", err)
		os.Exit(1)
	}
}

func find() (found, error) {
	r, err := testenv.FindRealSD()
	if errors.Is(err, testenv.ErrMissing) {
		return found{Missing: err.Error()}, nil
	}
	if err != nil {
		return found{}, err
	}
	// The id `genailab up -diffusion-model-file` gives the imported model: its base name
	// without the extension.
	base := filepath.Base(r.Model)
	return found{Dir: r.Dir, CLI: r.CLI, Server: r.Server, Model: r.Model, ModelID: strings.TrimSuffix(base, filepath.Ext(base))}, nil
}

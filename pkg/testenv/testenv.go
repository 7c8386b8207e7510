// Package testenv is the project's one policy for tests that need a real engine: it finds the
// real llama-server and the real stable-diffusion.cpp, and it decides what a test does when one is
// missing. A missing engine skips the test with a message that says how to provide it, unless the
// engine's REQUIRE variable is 1 (CI sets both), in which case the test fails: in CI nothing that
// needs an engine can skip.
//
// The functions without a testing.TB (FindSDCPP, TinySDModel, ...) are for TestMain, which cannot
// skip: keep the error and hand it to Need from each test.
//
// StartSelf is the one way a test or benchmark starts its own binary again as a helper
// process (a monitor, a relay, ...) that lives until the test ends.
package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// The variables the policy honours.
const (
	// RequireLlamaEnv=1 makes a missing llama-server a failure instead of a skip.
	RequireLlamaEnv = "GENAILAB_REQUIRE_LLAMA"
	// RequireSDCPPEnv=1 makes a missing stable-diffusion.cpp (or its test model) a failure.
	RequireSDCPPEnv = "GENAILAB_REQUIRE_SDCPP"
	// SDCPPDirEnv names a directory holding sd-cli and sd-server.
	SDCPPDirEnv = "GENAILAB_SDCPP_DIR"
	// CacheDirEnv overrides where generated test models are cached.
	CacheDirEnv = "GENAILAB_TEST_CACHE"
)

// ErrMissing marks an engine (or its test model) that is not available here.
var ErrMissing = errors.New("engine not available")

// Need skips (or, when requireEnv is "1", fails) t when err is not nil; err comes from one of the
// Find functions. A build error or any other error that is not ErrMissing always fails: a broken
// build must never turn tests into skips.
func Need(t testing.TB, requireEnv string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if !errors.Is(err, ErrMissing) {
		t.Fatalf("test environment: %v", err)
	}
	if os.Getenv(requireEnv) == "1" {
		t.Fatalf("%s=1 but %v", requireEnv, err)
	}
	t.Skipf("skipping: %v (set %s=1 to make this a failure)", err, requireEnv)
}

// RepoRoot returns the repository root: the nearest directory above the working directory that
// holds go.work.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("testenv: no go.work above the working directory (run the tests inside the genailab repository)")
		}
		dir = parent
	}
}

// SharedDir returns ../shared beside the repository root (the lab's engines, models and
// references; CI lays it out the same way), or ErrMissing.
func SharedDir() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrMissing, err)
	}
	dir := filepath.Join(filepath.Dir(root), "shared")
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return "", fmt.Errorf("%w: no shared directory at %s", ErrMissing, dir)
	}
	return dir, nil
}

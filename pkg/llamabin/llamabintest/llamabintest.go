// Package llamabintest gives tests the real llama-server, or skips them with a clear message when it is
// not installed. Set GENAILAB_REQUIRE_LLAMA=1 (CI does) to make a missing llama-server a failure instead.
package llamabintest

import (
	"os"
	"testing"

	"github.com/genailab/genailab/pkg/llamabin"
)

// RequireEnv makes a missing llama-server fail the test instead of skipping it.
const RequireEnv = "GENAILAB_REQUIRE_LLAMA"

// Binary returns the llama-server to test with (resolved like the services do), or skips the test.
func Binary(t testing.TB) string {
	t.Helper()
	f, err := llamabin.Resolve("")
	if err != nil {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("%s=1 but no llama-server: %v", RequireEnv, err)
		}
		t.Skipf("skipping: real llama-server not available: %v", err)
	}
	return f.Path
}

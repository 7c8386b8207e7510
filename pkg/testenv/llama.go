package testenv

import (
	"errors"
	"fmt"
	"testing"

	"github.com/genailab/genailab/pkg/llamabin"
)

// FindLlamaServer resolves the real llama-server as the services do (llamabin: GENAILAB_LLAMA_SERVER,
// PATH, then the repository's .engines install), or ErrMissing.
func FindLlamaServer() (string, error) {
	f, err := llamabin.Resolve("")
	if errors.Is(err, llamabin.ErrNotFound) {
		return "", fmt.Errorf("%w: %v", ErrMissing, err)
	}
	if err != nil {
		return "", err // a configured path that is wrong: never a skip
	}
	return f.Path, nil
}

// RequireLlamaServer returns the real llama-server, or skips t (fails it under
// GENAILAB_REQUIRE_LLAMA=1).
func RequireLlamaServer(t testing.TB) string {
	t.Helper()
	p, err := FindLlamaServer()
	Need(t, RequireLlamaEnv, err)
	return p
}

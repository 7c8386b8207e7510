// Package llamabintest starts the real llama-server for tests. Which llama-server, and what a test
// does without one, is pkg/testenv's policy: it skips with a message, or fails under
// GENAILAB_REQUIRE_LLAMA=1 (CI sets it).
package llamabintest

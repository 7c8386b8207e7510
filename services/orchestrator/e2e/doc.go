// Package e2e holds the orchestrator's end-to-end tests: the whole stack as real processes
// (one host, and several hosts in network namespaces) — the LLM service with a real
// llama-server and the generated tiny GGUF model, the diffusion service in demo mode (the sd-cli stand-in), the monitor, the
// orchestrator and the REST gateway — built with `go build` in TestMain and started on
// ephemeral loopback ports.
package e2e

// Package e2e holds the orchestrator's end-to-end tests: the whole stack as real processes
// (one host, and several hosts in network namespaces) — the LLM service with a real
// llama-server and the generated tiny GGUF model, the diffusion service on the real
// stable-diffusion.cpp (sd-cli, with the tiny random-weight model of testenv.TinySDModel), the
// monitor, the orchestrator and the REST gateway — built with `go build` in TestMain and
// started on ephemeral loopback ports.
//
// The engines follow pkg/testenv's policy: without llama-server or sd.cpp the tests skip with a
// message, and fail under GENAILAB_REQUIRE_LLAMA=1 / GENAILAB_REQUIRE_SDCPP=1 (as in CI). A
// build error of the services fails the package.
//
// Only what the real engine cannot be made to do on demand runs on the sd.cpp stand-in
// (stackOptions.StandIn, the diffusion service's -demo-engines): a generation that fails
// (SDSTANDIN_FAIL), and the 1024×1024 gateway-latency benchmark. Each such test says so.
package e2e

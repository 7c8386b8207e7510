// Package genailab is a small typed Go client for genailab's gRPC services: the LLM,
// diffusion and monitor services of a host, their model stores, and the orchestrator.
//
// Dial opens one lazily connected gRPC channel per service. The orchestrator's address
// is Options.Addr ("host" or "host:port"); the other services are on the same host at
// their default ports (LLM 50051, diffusion 50052, monitor 50053, orchestrator 50054)
// unless Options names them. A token travels as a bearer token with every call
// (pkg/auth.TokenCredentials); TLS is used when a TLS configuration or a CA file is given
// (pkg/tlsconfig, as the services use between themselves), otherwise the connection is
// plaintext (what `genailab up` serves on loopback). Without TLS the token travels in
// clear text: keep it to loopback.
//
// Besides the raw stubs (LLM, Diffusion, Models, Monitor, Orchestrator), the client has
// helpers for the streams people use most: GenerateImage (through the orchestrator, with
// progress and server-side cancel when the caller gives up), WatchUsage and Chat.
//
// The client holds no logic the services lack: every helper is a call of their APIs.
package genailab

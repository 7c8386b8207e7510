// Package engine runs stable-diffusion.cpp for the diffusion service, in one of two modes
// chosen at Start:
//
//   - ModeCLI: one sd-cli (older builds: sd) process per image (package sdcli).
//   - ModeServer: one persistent sd-server with the model loaded, supervised by
//     pkg/supervisor and driven through its native async job API.
//
// An Engine does one generation at a time (a second gets enginerr.ErrBusy: the orchestrator
// queues, the engine does not), streams its progress (stage, step, percent; package
// sdprogress), checks the PNG before returning it, and keeps the engine's output in a bounded
// log ring and its lifecycle in an event ring.
//
// Cancelling a server-mode generation: sd-server cancels queued jobs but answers 409 to
// cancelling a generating one ("cannot be interrupted yet"). The engine then restarts sd-server
// (SIGTERM ends it at once; it loads weights lazily, so the restart costs the model header read
// and the next job's weight load). That frees the accelerator at once, which is what a cancel is
// for (the orchestrator cancels to give the memory back to the LLM), and it keeps sd-server's
// stdout, the only source of step progress, free of a job nobody waits for.
package engine

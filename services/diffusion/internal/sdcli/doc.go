// Package sdcli runs stable-diffusion.cpp's sd-cli (older builds: sd) once per image.
//
// The process is run by supervisor.RunOnce: without a shell, with a scrubbed environment
// (EngineEnv), in its own process group (so a cancel or a stall kills it and anything it
// spawned, such as the gdb that ggml starts on an abort), with SIGKILL as its parent-death
// signal, in a private temporary directory that is removed afterwards whatever happens. Its
// stdout is parsed as it arrives (package sdprogress) and every line and bar is handed to the
// caller with the time it was read. sd-cli has no signal handler: SIGTERM ends it at once,
// mid-line and without an image, which is what a cancel wants; SIGKILL follows KillGrace.
package sdcli

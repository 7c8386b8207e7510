// Package sdprogress turns the stdout bytes of stable-diffusion.cpp (sd-cli, sd, sd-server) into
// progress events, and those events into a progress estimate for one image generation.
//
// The byte format it understands is the one recorded in the reference captures
// (../shared/reference/sdcpp): log lines `[LEVEL] file.cpp:LINE - message` (LEVEL padded to 5,
// optionally wrapped in --color escapes), and progress bars written as
// `\r  |<50 cells>| cur/total - rate<ESC>[K` with `=`/`>` cells and it/s or s/it for sampling
// steps, or `#` cells and MB/s or GB/s for weight loading. A `\n` follows a bar only after its last
// update, so a [Parser] emits a bar as soon as its closing `ESC[K` arrives, without waiting for the
// next line terminator.
//
// Three layers, each pure:
//   - [ParseLine] classifies one line or bar (no I/O, no state).
//   - [Parser] splits a byte stream fed in arbitrary chunks on `\r`, `\n` and `ESC[K`.
//   - [Tracker] folds the events of one generation, with the times they were seen, into a
//     [Progress]: stage, step, total steps, elapsed time, and a percent of the whole job that is
//     estimated from stage durations ([Estimates]) and recalibrated from the times it measures.
package sdprogress

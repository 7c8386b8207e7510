// Package standin is the root of the STAND-INS for stable-diffusion.cpp's `sd-cli` and
// `sd-server`. They are NOT the real engine: they run no model and produce noise images. They
// exist because the real binaries and weights cannot be downloaded where genailab is built and
// tested, and they imitate, byte for byte where it matters, what the real programs print, how
// they exit and how sd-server answers HTTP, as recorded in the reference captures under
// testdata/sdcpp (a copy of ../shared/reference/sdcpp: stable-diffusion.cpp master-827-97d2990).
//
// The diffusion service must work unchanged against the real binaries; the stand-ins only let
// it be built and tested without them.
//
// Sub-packages:
//
//   - sdlog: the `[LEVEL] file.cpp:LINE - message` log lines (only ERROR on stderr).
//   - sdbar: the `\r  |====>   | 3/20 - 1.23it/s\e[K` progress bars.
//   - sdargs: sd.cpp's option parser, driven by the captured --help text.
//   - sdmodel: what counts as a model file (valid GGUF, truncated GGUF, unknown format).
//   - sdimage: deterministic noise images, PNG with the `parameters` tEXt chunk, JPEG.
//   - sdgen: the generation pipeline (stage lines, bars, timing, failure injection).
//   - sdsignal: dying by a signal with the default disposition (SIGABRT, SIGSEGV).
//   - sdcli: the sd-cli stand-in (cmd/sd-cli-standin).
//   - sdserver: the sd-server stand-in (cmd/sd-server-standin).
//
// Environment variables read by both stand-ins (all optional):
//
//	SDSTANDIN_STEP_MS    duration of one sampling step in ms (default 10)
//	SDSTANDIN_STAGE_MS   duration of each other stage (header read, weight load, text encoding,
//	                     VAE decode) in ms (default 2)
//	SDSTANDIN_REALISTIC  1: durations modelled on the captured CPU run, scaled by image size
//	                     (about 0.7 s/step at 512x512); explicit *_MS values still win
//	SDSTANDIN_FAIL       error | segv | hang | noout | oom | oom-cuda: inject a failure
//	SDSTANDIN_FAIL_STEP  sampling step at which to fail (default: the middle step), or
//	                     "decode" to fail in the VAE decode instead
//	SDSTANDIN_FAIL_JOB   fail only the Nth generation of the process (1-based; default: all)
//	SDSTANDIN_BACKTRACE  gdb | none: on an abort, print the gdb backtrace that ggml prints when
//	                     gdb is installed (default: gdb if gdb is on PATH, as ggml does)
//	SDSTANDIN_JOB_TTL_S  sd-server: seconds before finished jobs expire (default 600)
package standin

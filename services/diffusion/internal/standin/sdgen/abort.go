package sdgen

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/genailab/genailab/services/diffusion/internal/standin/sdlog"
)

// abortTruncated is what the real sd-cli does with a model whose tensor data is cut: the text
// encoder's weights fail to load, the conditioner asserts, and ggml aborts (SIGABRT), printing
// gdb's backtrace when gdb is installed.
func (e *Engine) abortTruncated(ctx context.Context) error {
	start := time.Now()
	if err := e.sleep(ctx, e.Config.Timing.Load(e.Profile.TextEncoder)); err != nil {
		return err
	}
	e.Log.Infof(sdlog.Site{File: "model_loader.cpp", Line: 1304}, "loading tensors completed, taking %.2fs (read: 0.00s, memcpy: 0.00s, convert: 0.00s, copy_to_backend: 0.00s)", time.Since(start).Seconds())
	e.Log.Errorf(sdlog.Site{File: "model_loader.cpp", Line: 1172}, "read tensor data failed: '%s'", e.truncated)
	e.Log.Errorf(sdlog.Site{File: "model_manager.cpp", Line: 857}, "model manager load tensors failed")
	e.Log.Errorf(sdlog.Site{File: "ggml_extend.hpp", Line: 1989}, "clip prepare graph weights failed")
	e.Log.RawErr("src/src/conditioning/conditioner.hpp:467: GGML_ASSERT(!chunk_hidden_states.empty()) failed\n")
	if e.Config.Backtrace {
		e.printBacktrace()
	}
	return &CrashError{Signal: syscall.SIGABRT}
}

// printBacktrace prints what gdb, attached by ggml_print_backtrace, printed in the capture.
func (e *Engine) printBacktrace() {
	pid := os.Getpid()
	wait := fmt.Sprintf("0x00007fc29fef1c17 in __GI___wait4 (pid=%d, stat_loc=0x0, options=0, usage=0x0) at ../sysdeps/unix/sysv/linux/wait4.c:30\n", pid+3)
	e.Log.Raw("[Thread debugging using libthread_db enabled]\n" +
		"Using host libthread_db library \"/lib/x86_64-linux-gnu/libthread_db.so.1\".\n" +
		wait + "#0  " + wait)
	e.Log.RawErr("30\t../sysdeps/unix/sysv/linux/wait4.c: No such file or directory.\n")
	e.Log.Raw("30\tin ../sysdeps/unix/sysv/linux/wait4.c\n" +
		"#1  0x000055722fe65b1b in ggml_print_backtrace ()\n" +
		"#2  0x000055722fe65c68 in ggml_abort ()\n" +
		"#3  0x000055722fca5ef0 in FrozenCLIPEmbedderWithCustomWords::get_learned_condition_common(int, std::vector<int, std::allocator<int> >&, std::vector<float, std::allocator<float> >&, int, int, int, bool) ()\n" +
		"#4  0x000055722fca68d4 in FrozenCLIPEmbedderWithCustomWords::get_learned_condition(int, ConditionerParams const&) ()\n" +
		"#5  0x000055722faae410 in prepare_image_generation_embeds(sd_ctx_t*, sd_img_gen_params_t const*, GenerationRequest*, SamplePlan*, ImageGenerationLatents*, RefImageParams const&) ()\n" +
		"#6  0x000055722fab11cf in generate_image ()\n" +
		"#7  0x000055722f8f6011 in main ()\n" +
		fmt.Sprintf("[Inferior 1 (process %d) detached]\n", pid))
}

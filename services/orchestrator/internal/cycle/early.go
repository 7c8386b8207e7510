package cycle

import diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"

// The early reload: the LLM's reload starts the moment the diffusion engine has released
// its memory, not when the image has reached the client. The diffusion service reports
// STAGE_DONE once the engine's work is over — in CLI mode after sd-cli has exited (its
// memory is free) and the PNG was read back — and before it sends the result, so the
// reload runs in parallel with the transfer of the PNG, its checks and its delivery.
// Without a STAGE_DONE (a failure, a cancel) the reload starts when Run returns.

// earlyReload returns h with a Progress hook that calls reload at the first STAGE_DONE.
func earlyReload(h Hooks, reload func()) Hooks {
	next := h.Progress
	h.Progress = func(p *diffusionv1.Progress) {
		if p.GetStage() == diffusionv1.Stage_STAGE_DONE {
			reload()
		}
		if next != nil {
			next(p)
		}
	}
	return h
}

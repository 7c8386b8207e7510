package cycle

import (
	"context"
	"sync"
	"time"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	llmv1 "github.com/genailab/genailab/gen/llm/v1"
)

// Keeping the LLM warm: once the image's sampling has begun (the diffusion engine has loaded
// its model, so the page cache it pushed the LLM's model file out of is settled), the LLM
// service is asked to read the model file back into the page cache (LLMService.Prefetch; it
// declines when the host's available memory is short). The reload then loads from memory.

// prefetchTimeout bounds one Prefetch call.
const prefetchTimeout = 2 * time.Minute

// prefetchAtSampling returns h with a Progress hook that calls prefetch once, at the first
// sampling step.
func prefetchAtSampling(h Hooks, prefetch func()) Hooks {
	once := sync.OnceFunc(prefetch)
	next := h.Progress
	h.Progress = func(p *diffusionv1.Progress) {
		if p.GetStage() == diffusionv1.Stage_STAGE_SAMPLING && p.GetStep() > 0 {
			once()
		}
		if next != nil {
			next(p)
		}
	}
	return h
}

// prefetch asks the LLM service to read its model file ahead; the outcome is only logged.
func (c *Cycle) prefetch(ctx context.Context, jobID string) {
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), prefetchTimeout)
	defer cancel()
	resp, err := c.c.LLM.Prefetch(pctx, &llmv1.PrefetchRequest{})
	switch {
	case err != nil:
		c.log.Info("the LLM's model file was not prefetched", "job", jobID, "error", err)
	case !resp.GetPrefetched():
		c.log.Info("the LLM's model file was not prefetched", "job", jobID, "reason", resp.GetSkippedReason())
	default:
		c.log.Info("the LLM's model file was read into the page cache", "job", jobID, "bytes", resp.GetBytes(), "ms", resp.GetDurationMs())
	}
}

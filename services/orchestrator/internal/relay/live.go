package relay

import (
	"sync"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	llmv1 "github.com/genailab/genailab/gen/llm/v1"
)

// Live is what a host's lifecycle streams say now: the engine info each stream last
// carried (its snapshot, then every event, busy flips included), kept while the stream is
// connected. GetHealth answers from it instead of asking the services per request.
type Live struct {
	mu   sync.Mutex
	diff *diffusionv1.DiffusionInfo
	llm  *llmv1.LLMInfo
}

// Diffusion returns the diffusion engine's latest info; false while its stream is not
// connected.
func (l *Live) Diffusion() (*diffusionv1.DiffusionInfo, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.diff, l.diff != nil
}

// LLM returns the LLM's latest info; false while its stream is not connected.
func (l *Live) LLM() (*llmv1.LLMInfo, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.llm, l.llm != nil
}

func (l *Live) setDiffusion(in *diffusionv1.DiffusionInfo) {
	if l == nil {
		return
	}
	l.mu.Lock()
	l.diff = in
	l.mu.Unlock()
}

func (l *Live) setLLM(in *llmv1.LLMInfo) {
	if l == nil {
		return
	}
	l.mu.Lock()
	l.llm = in
	l.mu.Unlock()
}

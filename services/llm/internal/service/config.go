package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"

	"google.golang.org/protobuf/proto"

	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	"github.com/genailab/genailab/pkg/modelstore"
	"github.com/genailab/genailab/pkg/ports"
)

// Limits of a configuration.
const (
	maxThreads       = 1024
	maxContext       = 1 << 24
	maxParallelSlots = 256
)

// resolved is a configuration ready to launch.
type resolved struct {
	// requested is the configuration as the caller gave it (model id
	// defaulted); Restart and StopResponse.previous_config start from it, so
	// an automatic port is chosen afresh.
	requested *llmv1.LLMConfig
	// cfg has every automatic value filled in.
	cfg       *llmv1.LLMConfig
	modelPath string
	args      []string
}

// validate checks the caller's configuration without touching the system.
func validate(c *llmv1.LLMConfig) error {
	if c.GetModelId() == "" {
		return fmt.Errorf("%w: model_id is required (no default model is configured)", ErrInvalidConfig)
	}
	if err := modelstore.ValidateID(c.GetModelId()); err != nil {
		return fmt.Errorf("%w: model_id: %v", ErrInvalidConfig, err)
	}
	if h := c.GetHost(); h != "" && h != "localhost" && net.ParseIP(h) == nil {
		return fmt.Errorf("%w: host %q is not an IP address", ErrInvalidConfig, h)
	}
	if p := c.GetPort(); p < 0 || p > 65535 {
		return fmt.Errorf("%w: port %d out of range 0-65535", ErrInvalidConfig, p)
	}
	if t := c.GetThreads(); t < 0 || t > maxThreads {
		return fmt.Errorf("%w: threads %d out of range 0-%d", ErrInvalidConfig, t, maxThreads)
	}
	if n := c.GetContextSize(); n < 0 || n > maxContext {
		return fmt.Errorf("%w: context_size %d out of range 0-%d", ErrInvalidConfig, n, maxContext)
	}
	if c.GpuLayers != nil && c.GetGpuLayers() < -1 {
		return fmt.Errorf("%w: gpu_layers %d (want -1 for all, or 0 and more)", ErrInvalidConfig, c.GetGpuLayers())
	}
	if n := c.GetParallelSlots(); n < 0 || n > maxParallelSlots {
		return fmt.Errorf("%w: parallel_slots %d out of range 0-%d", ErrInvalidConfig, n, maxParallelSlots)
	}
	if _, ok := llmv1.FlashAttention_name[int32(c.GetFlashAttention())]; !ok {
		return fmt.Errorf("%w: flash_attention %d is not a known mode", ErrInvalidConfig, c.GetFlashAttention())
	}
	for name, t := range map[string]string{"cache_type_k": c.GetCacheTypeK(), "cache_type_v": c.GetCacheTypeV()} {
		if _, ok := cacheTypeBytes[t]; t != "" && !ok {
			return fmt.Errorf("%w: %s %q (want one of f32, f16, bf16, q8_0, q4_0, q4_1, iq4_nl, q5_0, q5_1)", ErrInvalidConfig, name, t)
		}
	}
	return validateExtraArgs(c.GetExtraArgs())
}

// checkBind refuses a host that is not loopback unless the operator allowed
// it (Options.AllowRemoteBind).
func (s *Service) checkBind(host string) error {
	if loopbackHost(host) || s.opts.AllowRemoteBind {
		return nil
	}
	return fmt.Errorf("%w: host %q is not a loopback address; the LLM service relays chat itself, so "+
		"llama-server listens on 127.0.0.1 (leave host empty). To let llama-server listen on other addresses, "+
		"the operator starts the LLM service with -allow-engine-remote-bind (llama-server then requires an API key)",
		ErrRemoteBind, host)
}

// loopbackHost reports whether host ("" means ports.DefaultHost) binds
// loopback only: localhost, 127.0.0.0/8 or ::1. Wildcards (0.0.0.0, ::)
// and every other address are not.
func loopbackHost(host string) bool {
	if host == "" || host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// resolve validates req, finds its model in the store and fills in every
// automatic value. An unknown model is ErrModelNotFound. The model file is
// not checked beyond its record: a broken file is llama-server's to report.
func (s *Service) resolve(ctx context.Context, req *llmv1.LLMConfig) (*resolved, error) {
	requested := &llmv1.LLMConfig{}
	if req != nil {
		requested = proto.CloneOf(req)
	}
	if requested.ModelId == "" {
		requested.ModelId = s.opts.DefaultModel
	}
	if err := validate(requested); err != nil {
		return nil, err
	}
	if err := s.checkBind(requested.GetHost()); err != nil {
		return nil, err
	}
	rec, err := s.opts.Store.Get(ctx, requested.GetModelId())
	if err != nil {
		if errors.Is(err, modelstore.ErrNotFound) {
			return nil, fmt.Errorf("%w: %q is not in the llm model store", ErrModelNotFound, requested.GetModelId())
		}
		return nil, fmt.Errorf("read model %q: %w", requested.GetModelId(), err)
	}
	main := rec.MainFile()
	if main == nil {
		return nil, fmt.Errorf("%w: model %q has no model file", ErrInvalidConfig, rec.ID)
	}
	path, err := s.opts.Store.FilePath(rec.ID, main.Name)
	if err == nil {
		path, err = filepath.Abs(path) // llama-server runs in its own directory
	}
	if err != nil {
		return nil, fmt.Errorf("model %q: %w", rec.ID, err)
	}

	cfg := proto.CloneOf(requested)
	if cfg.Host == "" {
		cfg.Host = ports.DefaultHost
	}
	facts := s.opts.HostFacts()
	if cfg.Threads == 0 {
		cfg.Threads = int32(max(1, min(facts.Threads, maxThreads)))
	}
	if cfg.ContextSize == 0 {
		info := rec.GGUF
		if info == nil {
			// Records written before metadata was read, or by hand: read
			// the header now. An unreadable one is left to llama-server.
			info, _ = modelstore.ReadGGUFInfo(path)
		}
		cfg.ContextSize = int32(autoContext(info, cfg.CacheTypeK, cfg.CacheTypeV,
			facts.MemAvailable, uint64(max(rec.Size(), 0)), s.opts.MaxAutoContext))
	}
	if cfg.GpuLayers == nil {
		cfg.GpuLayers = autoGPULayers(facts.GPU)
	}
	if cfg.Port == 0 {
		p, err := ports.Free(cfg.Host)
		if err != nil {
			return nil, fmt.Errorf("pick a port for llama-server: %w", err)
		}
		cfg.Port = int32(p)
	}
	return &resolved{requested: requested, cfg: cfg, modelPath: path, args: buildArgs(cfg, path)}, nil
}

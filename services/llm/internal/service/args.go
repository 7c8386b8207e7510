package service

import (
	"fmt"
	"strconv"
	"strings"

	llmv1 "github.com/genailab/genailab/gen/llm/v1"
)

// buildArgs is llama-server's command line for a resolved configuration.
// Nothing passes through a shell; every value is one argument.
func buildArgs(cfg *llmv1.LLMConfig, modelPath string) []string {
	args := []string{
		"-m", modelPath,
		"--host", cfg.GetHost(),
		"--port", strconv.Itoa(int(cfg.GetPort())),
		"-t", strconv.Itoa(int(cfg.GetThreads())),
		"-c", strconv.Itoa(int(cfg.GetContextSize())),
		// The service parses llama-server's own prefix (timestamps, level
		// letters); colours would garble it.
		"--log-colors", "off",
		// /metrics, re-exported by the service's own (metrics.go).
		"--metrics",
	}
	if cfg.GpuLayers != nil {
		n := cfg.GetGpuLayers()
		if n < 0 {
			args = append(args, "-ngl", "all")
		} else {
			args = append(args, "-ngl", strconv.Itoa(int(n)))
		}
	}
	if n := cfg.GetParallelSlots(); n > 0 {
		args = append(args, "-np", strconv.Itoa(int(n)))
	}
	switch cfg.GetFlashAttention() {
	case llmv1.FlashAttention_FLASH_ATTENTION_ON:
		args = append(args, "-fa", "on")
	case llmv1.FlashAttention_FLASH_ATTENTION_OFF:
		args = append(args, "-fa", "off")
	}
	if t := cfg.GetCacheTypeK(); t != "" {
		args = append(args, "--cache-type-k", t)
	}
	if t := cfg.GetCacheTypeV(); t != "" {
		args = append(args, "--cache-type-v", t)
	}
	if cfg.GetNoMmap() {
		args = append(args, "--no-mmap")
	}
	return append(args, cfg.GetExtraArgs()...)
}

// extraArgFlags is the allow-list of llama-server flags accepted in
// LLMConfig.extra_args, with whether each takes a value. Left out on
// purpose: flags the service sets itself (model, host, port, threads,
// context, GPU layers, ...), and every flag that names a file or directory
// (log files, slot save paths, static file serving, LoRA, grammars), an API
// key, or makes llama-server download something.
var extraArgFlags = func() map[string]bool {
	withValue := []string{
		"-b", "--batch-size", "-ub", "--ubatch-size", "-tb", "--threads-batch",
		"-n", "--predict", "--n-predict", "--keep", "--numa",
		"-sm", "--split-mode", "-ts", "--tensor-split", "-mg", "--main-gpu",
		"-fit", "--fit", "-fitt", "--fit-target", "-fitc", "--fit-ctx",
		"--rope-scaling", "--rope-scale", "--rope-freq-base", "--rope-freq-scale",
		"--yarn-orig-ctx", "--yarn-ext-factor", "--yarn-attn-factor", "--yarn-beta-fast", "--yarn-beta-slow",
		"--cache-reuse", "--chat-template", "--reasoning-format", "--reasoning-budget",
		"--temp", "--top-k", "--top-p", "--min-p", "--repeat-penalty", "--repeat-last-n",
		"--presence-penalty", "--frequency-penalty", "-s", "--seed", "--timeout",
		"-lv", "--verbosity", "--log-verbosity",
	}
	switches := []string{
		"-cb", "--cont-batching", "-nocb", "--no-cont-batching", "--mlock",
		"-kvu", "--kv-unified", "--no-kv-unified", "-nkvo", "--no-kv-offload", "--swa-full",
		"--jinja", "--no-jinja", "--metrics", "--slots", "--no-slots", "--no-webui",
		"--log-timestamps", "--log-prefix", "--no-warmup",
	}
	m := make(map[string]bool, len(withValue)+len(switches))
	for _, f := range withValue {
		m[f] = true
	}
	for _, f := range switches {
		m[f] = false
	}
	return m
}()

// maxExtraArgs bounds the number and size of extra arguments.
const (
	maxExtraArgs   = 64
	maxExtraArgLen = 1024
)

// validateExtraArgs checks extra llama-server arguments against the
// allow-list. A flag is one argument ("--temp") followed by its value as
// the next argument, or one "--flag=value" argument.
func validateExtraArgs(args []string) error {
	if len(args) > maxExtraArgs {
		return fmt.Errorf("%w: %d extra arguments (at most %d)", ErrInvalidConfig, len(args), maxExtraArgs)
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if len(a) > maxExtraArgLen || strings.ContainsRune(a, 0) {
			return fmt.Errorf("%w: extra argument %d is too long or contains NUL", ErrInvalidConfig, i)
		}
		name, value, hasValue := strings.Cut(a, "=")
		takes, ok := extraArgFlags[name]
		if !ok {
			if strings.HasPrefix(a, "-") {
				return fmt.Errorf("%w: extra argument %q is not allowed (allowed: generation and performance flags; the service sets model, host, port, threads, context and GPU layers itself)", ErrInvalidConfig, name)
			}
			return fmt.Errorf("%w: extra argument %q is not a flag", ErrInvalidConfig, a)
		}
		switch {
		case !takes && hasValue:
			return fmt.Errorf("%w: extra argument %s takes no value", ErrInvalidConfig, name)
		case takes && hasValue:
			if value == "" {
				return fmt.Errorf("%w: extra argument %s has an empty value", ErrInvalidConfig, name)
			}
		case takes:
			if i+1 >= len(args) {
				return fmt.Errorf("%w: extra argument %s needs a value", ErrInvalidConfig, name)
			}
			i++
			if v := args[i]; v == "" || len(v) > maxExtraArgLen || strings.ContainsRune(v, 0) {
				return fmt.Errorf("%w: value of extra argument %s is empty, too long or contains NUL", ErrInvalidConfig, name)
			}
		}
	}
	return nil
}

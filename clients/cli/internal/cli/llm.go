package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/genailab/genailab/clients/cli/internal/termui"
	genailab "github.com/genailab/genailab/clients/go"
	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	modelsv1 "github.com/genailab/genailab/gen/models/v1"
)

func (a *App) llmCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "llm", Short: "The LLM server (llama.cpp llama-server): start, stop, status, logs, chat"}
	cmd.AddCommand(a.llmStartCmd(false), a.llmStopCmd(), a.llmStartCmd(true),
		callCmd(a, "status", "The LLM server's state, model, pid, port and health", noArgs, genailab.ServiceLLM,
			func(ctx context.Context, c *genailab.Client, _ []string) (*llmv1.GetInfoResponse, error) {
				return c.LLM().GetInfo(ctx, &llmv1.GetInfoRequest{})
			}, a.printLLMInfo),
		a.logsCmd(genailab.ServiceLLM, "Print llama-server's output (-f: keep following)"),
		a.chatCmd())
	return cmd
}

// llmConfigFlags are the start options of llama-server.
type llmConfigFlags struct {
	model, host, flash, cacheK, cacheV, gpuLayers string
	port, threads, ctx, parallel                  int32
	noMmap, autoRestart                           bool
	extra                                         []string
	readyTimeout                                  time.Duration
}

func (f *llmConfigFlags) register(cmd *cobra.Command, completeModel cobra.CompletionFunc) {
	fl := cmd.Flags()
	fl.StringVarP(&f.model, "model", "m", "", "model id (default: the service's default model)")
	fl.StringVar(&f.host, "host", "", "address llama-server binds (default 127.0.0.1)")
	fl.Int32Var(&f.port, "port", 0, "llama-server's port (0: a free port)")
	fl.Int32VarP(&f.threads, "threads", "t", 0, "CPU threads (0: from the CPU)")
	fl.Int32VarP(&f.ctx, "ctx-size", "c", 0, "context size in tokens (0: from the model and free memory)")
	fl.StringVar(&f.gpuLayers, "gpu-layers", "", "layers on the GPU: a number, 'all', or empty for automatic")
	fl.Int32Var(&f.parallel, "parallel", 0, "parallel sequences (0: llama-server's default)")
	fl.StringVar(&f.flash, "flash-attn", "auto", "flash attention: auto, on or off")
	fl.StringVar(&f.cacheK, "cache-type-k", "", "KV cache type for K (f16, q8_0, ...)")
	fl.StringVar(&f.cacheV, "cache-type-v", "", "KV cache type for V")
	fl.BoolVar(&f.noMmap, "no-mmap", false, "do not memory-map the model")
	fl.BoolVar(&f.autoRestart, "auto-restart", false, "restart automatically after a crash")
	fl.StringArrayVar(&f.extra, "extra-arg", nil, "extra llama-server argument (allow-listed by the service); repeatable")
	fl.DurationVar(&f.readyTimeout, "ready-timeout", 0, "how long to wait for the server to be ready (0: the service's default)")
	_ = cmd.RegisterFlagCompletionFunc("flash-attn", cobra.FixedCompletions([]string{"auto", "on", "off"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("model", completeModel)
}

func (f *llmConfigFlags) config() (*llmv1.LLMConfig, error) {
	c := &llmv1.LLMConfig{ModelId: f.model, Host: f.host, Port: f.port, Threads: f.threads, ContextSize: f.ctx,
		ParallelSlots: f.parallel, CacheTypeK: f.cacheK, CacheTypeV: f.cacheV, NoMmap: f.noMmap, ExtraArgs: f.extra, AutoRestart: f.autoRestart}
	switch strings.ToLower(f.flash) {
	case "", "auto":
	case "on":
		c.FlashAttention = llmv1.FlashAttention_FLASH_ATTENTION_ON
	case "off":
		c.FlashAttention = llmv1.FlashAttention_FLASH_ATTENTION_OFF
	default:
		return nil, fmt.Errorf("--flash-attn %q: want auto, on or off", f.flash)
	}
	switch strings.ToLower(f.gpuLayers) {
	case "":
	case "all":
		n := int32(-1)
		c.GpuLayers = &n
	default:
		var n int32
		if _, err := fmt.Sscan(f.gpuLayers, &n); err != nil {
			return nil, fmt.Errorf("--gpu-layers %q: want a number or 'all'", f.gpuLayers)
		}
		c.GpuLayers = &n
	}
	return c, nil
}

func (a *App) llmStartCmd(restart bool) *cobra.Command {
	var f llmConfigFlags
	var cmd *cobra.Command
	if restart {
		cmd = callCmd(a, "restart", "Restart llama-server (with new options when any is given)", noArgs, genailab.ServiceLLM,
			func(ctx context.Context, c *genailab.Client, _ []string) (*llmv1.RestartResponse, error) {
				cfg, err := f.config()
				if err != nil {
					return nil, err
				}
				req := &llmv1.RestartRequest{ReadyTimeoutMs: f.readyTimeout.Milliseconds()}
				if anyChanged(cmd, "model", "host", "port", "threads", "ctx-size", "gpu-layers", "parallel",
					"flash-attn", "cache-type-k", "cache-type-v", "no-mmap", "auto-restart", "extra-arg") {
					req.Config = cfg
				}
				return c.LLM().Restart(ctx, req)
			}, func(resp *llmv1.RestartResponse) error { return a.printLLMRunning(resp.GetInfo(), 0) })
	} else {
		cmd = callCmd(a, "start", "Start llama-server and wait until it is ready", noArgs, genailab.ServiceLLM,
			func(ctx context.Context, c *genailab.Client, _ []string) (*llmv1.StartResponse, error) {
				cfg, err := f.config()
				if err != nil {
					return nil, err
				}
				return c.LLM().Start(ctx, &llmv1.StartRequest{Config: cfg, ReadyTimeoutMs: f.readyTimeout.Milliseconds()})
			}, func(resp *llmv1.StartResponse) error {
				return a.printLLMRunning(resp.GetInfo(), time.Duration(resp.GetStartupMs())*time.Millisecond)
			})
	}
	f.register(cmd, a.completeModelsOf(modelsv1.ModelType_MODEL_TYPE_LLM))
	return cmd
}

// printLLMRunning is the line about a started llama-server (startup: how long it took, 0 when unknown).
func (a *App) printLLMRunning(info *llmv1.LLMInfo, startup time.Duration) error {
	line := fmt.Sprintf("LLM server running: model %s, pid %d, %s", termui.SanitizeLine(info.GetModelId()), info.GetPid(), termui.SanitizeLine(info.GetBaseUrl()))
	if startup > 0 {
		line += ", ready in " + termui.Duration(startup)
	}
	_, err := fmt.Fprintln(a.Stdout, line+".")
	return err
}

func anyChanged(cmd *cobra.Command, names ...string) bool {
	for _, n := range names {
		if changed(cmd.Flags(), n) {
			return true
		}
	}
	return false
}

func (a *App) llmStopCmd() *cobra.Command {
	var drain time.Duration
	cmd := callCmd(a, "stop", "Stop llama-server", noArgs, genailab.ServiceLLM,
		func(ctx context.Context, c *genailab.Client, _ []string) (*llmv1.StopResponse, error) {
			return c.LLM().Stop(ctx, &llmv1.StopRequest{DrainTimeoutMs: drain.Milliseconds()})
		}, func(resp *llmv1.StopResponse) error {
			var err error
			if resp.GetWasRunning() {
				_, err = fmt.Fprintf(a.Stdout, "LLM server stopped (model %s).\n", termui.SanitizeLine(resp.GetPreviousConfig().GetModelId()))
			} else {
				_, err = fmt.Fprintln(a.Stdout, "LLM server was not running.")
			}
			return err
		})
	cmd.Flags().DurationVar(&drain, "drain", 0, "let chat requests in flight finish for up to this long")
	return cmd
}

// printLLMInfo shows llama-server's state.
func (a *App) printLLMInfo(resp *llmv1.GetInfoResponse) error {
	i := resp.GetInfo()
	cfg := i.GetConfig()
	pairs := []string{
		"Status", enumName(i.GetStatus().String(), "SERVER_STATUS_"),
		"Health", enumName(i.GetHealth().String(), "HEALTH_STATUS_"),
		"Model", orDash(termui.SanitizeLine(i.GetModelId())),
		"PID", orDash(intOrEmpty(int64(i.GetPid()))),
		"URL", orDash(termui.SanitizeLine(i.GetBaseUrl())),
		"Started", when(i.GetStartedAt()),
		"Context", orDash(intOrEmpty(int64(cfg.GetContextSize()))),
		"Threads", orDash(intOrEmpty(int64(cfg.GetThreads()))),
		"In flight", fmt.Sprint(i.GetInFlightRequests()),
		"Restarts", fmt.Sprint(i.GetRestarts()),
	}
	if i.GetOffloaded() {
		pairs = append(pairs, "Offloaded", "yes (stopped to free memory for an image; chat waits for it)")
	}
	if e := i.GetLastError(); e != "" {
		pairs = append(pairs, "Last error", oneLine(e))
	}
	if b := i.GetBinaryPath(); b != "" {
		pairs = append(pairs, "Binary", termui.SanitizeLine(b))
	}
	return a.kv(pairs...)
}

func enumName(s, prefix string) string { return strings.ToLower(strings.TrimPrefix(s, prefix)) }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func intOrEmpty(n int64) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprint(n)
}

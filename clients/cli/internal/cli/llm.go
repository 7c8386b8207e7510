package cli

import (
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
	cmd.AddCommand(a.llmStartCmd(false), a.llmStopCmd(), a.llmStartCmd(true), a.llmStatusCmd(), a.llmLogsCmd(), a.chatCmd())
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
	use, short := "start", "Start llama-server and wait until it is ready"
	if restart {
		use, short = "restart", "Restart llama-server (with new options when any is given)"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  noArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			c, err := a.dial(cmd)
			if err != nil {
				return err
			}
			cfg, err := f.config()
			if err != nil {
				return err
			}
			var info *llmv1.LLMInfo
			var startup time.Duration
			if restart {
				req := &llmv1.RestartRequest{ReadyTimeoutMs: f.readyTimeout.Milliseconds()}
				if cmd.Flags().NFlag() > 0 && anyChanged(cmd, "model", "host", "port", "threads", "ctx-size", "gpu-layers", "parallel",
					"flash-attn", "cache-type-k", "cache-type-v", "no-mmap", "auto-restart", "extra-arg") {
					req.Config = cfg
				}
				resp, err := c.LLM().Restart(cmd.Context(), req)
				if err != nil {
					return a.at(genailab.ServiceLLM, err)
				}
				if a.g.json {
					return a.printJSON(resp)
				}
				info = resp.GetInfo()
			} else {
				resp, err := c.LLM().Start(cmd.Context(), &llmv1.StartRequest{Config: cfg, ReadyTimeoutMs: f.readyTimeout.Milliseconds()})
				if err != nil {
					return a.at(genailab.ServiceLLM, err)
				}
				if a.g.json {
					return a.printJSON(resp)
				}
				info, startup = resp.GetInfo(), time.Duration(resp.GetStartupMs())*time.Millisecond
			}
			line := fmt.Sprintf("LLM server running: model %s, pid %d, %s", termui.SanitizeLine(info.GetModelId()), info.GetPid(), termui.SanitizeLine(info.GetBaseUrl()))
			if startup > 0 {
				line += ", ready in " + termui.Duration(startup)
			}
			fmt.Fprintln(a.Stdout, line+".")
			return nil
		}),
	}
	f.register(cmd, a.completeModelsOf(modelsv1.ModelType_MODEL_TYPE_LLM))
	return cmd
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
	cmd := &cobra.Command{
		Use:   "stop",
		Short: "Stop llama-server",
		Args:  noArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			c, err := a.dial(cmd)
			if err != nil {
				return err
			}
			resp, err := c.LLM().Stop(cmd.Context(), &llmv1.StopRequest{DrainTimeoutMs: drain.Milliseconds()})
			if err != nil {
				return a.at(genailab.ServiceLLM, err)
			}
			if a.g.json {
				return a.printJSON(resp)
			}
			if resp.GetWasRunning() {
				fmt.Fprintf(a.Stdout, "LLM server stopped (model %s).\n", termui.SanitizeLine(resp.GetPreviousConfig().GetModelId()))
			} else {
				fmt.Fprintln(a.Stdout, "LLM server was not running.")
			}
			return nil
		}),
	}
	cmd.Flags().DurationVar(&drain, "drain", 0, "let chat requests in flight finish for up to this long")
	return cmd
}

func (a *App) llmStatusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "The LLM server's state, model, pid, port and health",
		Args:  noArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			c, err := a.dial(cmd)
			if err != nil {
				return err
			}
			resp, err := c.LLM().GetInfo(cmd.Context(), &llmv1.GetInfoRequest{})
			if err != nil {
				return a.at(genailab.ServiceLLM, err)
			}
			if a.g.json {
				return a.printJSON(resp)
			}
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
		}),
	}
}

func (a *App) llmLogsCmd() *cobra.Command {
	var follow bool
	var tail int32
	cmd := &cobra.Command{
		Use:   "logs",
		Short: "Print llama-server's output (-f: keep following)",
		Args:  noArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			c, err := a.dial(cmd)
			if err != nil {
				return err
			}
			stream, err := c.LLM().StreamLogs(cmd.Context(), &llmv1.StreamLogsRequest{TailLines: &tail, Follow: follow})
			if err != nil {
				return a.at(genailab.ServiceLLM, err)
			}
			return a.printLogs(func() (logMsg, error) {
				m, err := stream.Recv()
				if err != nil {
					return nil, a.at(genailab.ServiceLLM, err)
				}
				return m, nil
			})
		}),
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new lines until interrupted")
	cmd.Flags().Int32VarP(&tail, "tail", "n", 100, "how many of the latest lines to print first")
	return cmd
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

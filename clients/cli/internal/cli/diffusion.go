package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/genailab/genailab/clients/cli/internal/termui"
	genailab "github.com/genailab/genailab/clients/go"
	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	modelsv1 "github.com/genailab/genailab/gen/models/v1"
)

func (a *App) diffusionCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "diffusion", Aliases: []string{"sd"}, Short: "The diffusion engine (stable-diffusion.cpp): start, stop, status, logs"}
	cmd.AddCommand(a.diffusionStartCmd(), a.diffusionStopCmd(),
		callCmd(a, "status", "The diffusion engine's state, model, mode and current generation", noArgs, genailab.ServiceDiffusion,
			func(ctx context.Context, c *genailab.Client, _ []string) (*diffusionv1.GetInfoResponse, error) {
				return c.Diffusion().GetInfo(ctx, &diffusionv1.GetInfoRequest{})
			}, a.printDiffusionInfo),
		a.logsCmd(genailab.ServiceDiffusion, "Print the diffusion engine's output, sd-cli's or sd-server's (-f: keep following)"))
	return cmd
}

func (a *App) diffusionStartCmd() *cobra.Command {
	var cfg diffusionv1.DiffusionConfig
	var mode string
	var ready time.Duration
	cmd := callCmd(a, "start", "Start the diffusion engine with a model (cli mode: sd-cli per image; server mode: a persistent sd-server)",
		noArgs, genailab.ServiceDiffusion, func(ctx context.Context, c *genailab.Client, _ []string) (*diffusionv1.StartResponse, error) {
			switch strings.ToLower(mode) {
			case "", "cli":
				cfg.Mode = diffusionv1.EngineMode_ENGINE_MODE_CLI
			case "server":
				cfg.Mode = diffusionv1.EngineMode_ENGINE_MODE_SERVER
			default:
				return nil, fmt.Errorf("--mode %q: want cli or server", mode)
			}
			return c.Diffusion().Start(ctx, &diffusionv1.StartRequest{Config: &cfg, ReadyTimeoutMs: ready.Milliseconds()})
		}, func(resp *diffusionv1.StartResponse) error {
			i := resp.GetInfo()
			line := fmt.Sprintf("Diffusion engine running: model %s, %s mode", termui.SanitizeLine(i.GetModelId()), enumName(i.GetConfig().GetMode().String(), "ENGINE_MODE_"))
			if i.GetDemoEngine() {
				line += " (demo stand-in: synthetic images)"
			}
			_, err := fmt.Fprintln(a.Stdout, line+".")
			return err
		})
	fl := cmd.Flags()
	fl.StringVarP(&cfg.ModelId, "model", "m", "", "diffusion model id (default: the service's -default-model)")
	fl.StringVar(&mode, "mode", "cli", "cli or server")
	fl.Int32VarP(&cfg.Threads, "threads", "t", 0, "CPU threads (0: from the CPU)")
	fl.Int32Var(&cfg.Port, "port", 0, "sd-server's port in server mode (0: a free port)")
	fl.BoolVar(&cfg.OffloadToCpu, "offload-to-cpu", false, "keep weights in RAM, move them to VRAM only when needed")
	fl.BoolVar(&cfg.VaeTiling, "vae-tiling", false, "decode the VAE in tiles (less memory)")
	fl.BoolVar(&cfg.ClipOnCpu, "clip-on-cpu", false, "keep the text encoders on the CPU")
	fl.BoolVar(&cfg.VaeOnCpu, "vae-on-cpu", false, "keep the VAE on the CPU")
	fl.BoolVar(&cfg.DiffusionFa, "diffusion-fa", false, "flash attention in the diffusion model")
	fl.DurationVar(&ready, "ready-timeout", 0, "how long to wait for sd-server (0: the service's default)")
	_ = cmd.RegisterFlagCompletionFunc("mode", cobra.FixedCompletions([]string{"cli", "server"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("model", a.completeModelsOf(modelsv1.ModelType_MODEL_TYPE_DIFFUSION))
	return cmd
}

func (a *App) diffusionStopCmd() *cobra.Command {
	return callCmd(a, "stop", "Stop the diffusion engine (cancelling a generation in progress)", noArgs, genailab.ServiceDiffusion,
		func(ctx context.Context, c *genailab.Client, _ []string) (*diffusionv1.StopResponse, error) {
			return c.Diffusion().Stop(ctx, &diffusionv1.StopRequest{})
		}, func(*diffusionv1.StopResponse) error {
			_, err := fmt.Fprintln(a.Stdout, "Diffusion engine stopped.")
			return err
		})
}

// printDiffusionInfo shows the diffusion engine's state.
func (a *App) printDiffusionInfo(resp *diffusionv1.GetInfoResponse) error {
	i := resp.GetInfo()
	busy := "no"
	if i.GetBusy() {
		busy = "yes"
		if p := i.GetCurrent(); p != nil {
			busy += ": " + progressText(p)
		}
	}
	pairs := []string{
		"Status", enumName(i.GetStatus().String(), "SERVER_STATUS_"),
		"Health", enumName(i.GetHealth().String(), "HEALTH_STATUS_"),
		"Model", orDash(termui.SanitizeLine(i.GetModelId())),
		"Mode", enumName(i.GetConfig().GetMode().String(), "ENGINE_MODE_"),
		"Busy", busy,
		"PID", orDash(intOrEmpty(int64(i.GetPid()))),
		"Port", orDash(intOrEmpty(int64(i.GetPort()))),
		"Started", when(i.GetStartedAt()),
	}
	if i.GetDemoEngine() {
		pairs = append(pairs, "Engine", "demo stand-in (synthetic images, not stable-diffusion.cpp)")
	} else if b := i.GetBinaryPath(); b != "" {
		pairs = append(pairs, "Engine", termui.SanitizeLine(b))
	}
	if r := i.GetUnavailableReason(); r != "" {
		pairs = append(pairs, "Unavailable", oneLine(r))
	}
	if e := i.GetLastError(); e != "" {
		pairs = append(pairs, "Last error", oneLine(e))
	}
	if ss := i.GetSamplers(); len(ss) > 0 {
		pairs = append(pairs, "Samplers", termui.SanitizeLine(strings.Join(ss, ", ")))
	}
	return a.kv(pairs...)
}

// progressText is one line about a generation's progress.
func progressText(p *diffusionv1.Progress) string {
	stage := enumName(p.GetStage().String(), "STAGE_")
	switch {
	case p.GetStage() == diffusionv1.Stage_STAGE_SAMPLING && p.GetStep() > 0 && p.GetTotalSteps() > 0:
		return fmt.Sprintf("%s step %d/%d (%.0f%%)", stage, p.GetStep(), p.GetTotalSteps(), p.GetPercent())
	default:
		return fmt.Sprintf("%s (%.0f%%)", stage, p.GetPercent())
	}
}

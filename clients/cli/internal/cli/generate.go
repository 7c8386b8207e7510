package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	"github.com/genailab/genailab/clients/cli/internal/termui"
	genailab "github.com/genailab/genailab/clients/go"
	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
)

func (a *App) generateCmd() *cobra.Command {
	var p diffusionv1.ImageParams
	var out string
	var cfgScale float32
	var seed int64
	var width, height, steps int32
	cmd := &cobra.Command{
		Use:   `generate "PROMPT"`,
		Short: "Generate an image through the orchestrator, with a live progress bar",
		Long: `Generate an image. The orchestrator queues it, offloads the LLM when the image would
not fit next to it, generates, and brings the LLM back. A live bar shows the stage and
step; Ctrl-C cancels the generation on the server. The PNG is written to -o (default:
<job id>.png); 'genaictl jobs get ID -o FILE' fetches it again later.`,
		Args: cobra.MinimumNArgs(1),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			p.Prompt = strings.Join(args, " ")
			if changed(cmd.Flags(), "cfg-scale") {
				p.CfgScale = &cfgScale
			}
			if changed(cmd.Flags(), "seed") {
				p.Seed = &seed
			}
			// Only the flags given are sent: a --steps 0 is the server's to refuse, no
			// --steps is its default.
			if changed(cmd.Flags(), "width") {
				p.Width = &width
			}
			if changed(cmd.Flags(), "height") {
				p.Height = &height
			}
			if changed(cmd.Flags(), "steps") {
				p.Steps = &steps
			}
			c, err := a.dial(cmd)
			if err != nil {
				return err
			}
			return a.generate(cmd, c, &p, out)
		}),
	}
	fl := cmd.Flags()
	fl.StringVarP(&out, "output", "o", "", "PNG file to write (default: <job id>.png)")
	fl.StringVar(&p.NegativePrompt, "negative", "", "what to avoid")
	fl.Int32VarP(&width, "width", "W", 512, "width in pixels, a multiple of 64")
	fl.Int32VarP(&height, "height", "H", 512, "height in pixels, a multiple of 64")
	fl.Int32Var(&steps, "steps", 20, "sampling steps, 1..150")
	fl.Float32Var(&cfgScale, "cfg-scale", 7.5, "guidance scale, 0..30")
	fl.Int64Var(&seed, "seed", -1, "seed (default: random; the result says which)")
	fl.StringVar(&p.Sampler, "sampler", "", "sampler (default euler_a; 'genaictl diffusion status' lists the ones the service accepts)")
	_ = cmd.RegisterFlagCompletionFunc("sampler", func(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
		return a.complete(cmd, listSamplers)
	})
	_ = cmd.MarkFlagFilename("output", "png")
	return cmd
}

func (a *App) generate(cmd *cobra.Command, c *genailab.Client, p *diffusionv1.ImageParams, out string) error {
	live := a.live()
	defer live.Clear()
	start := time.Now()
	var jobID string
	var lastPlain string
	var jsonErr error
	res, err := c.GenerateImage(cmd.Context(), p, func(e genailab.Event) {
		if a.g.json {
			if jsonErr == nil {
				jsonErr = a.printJSONLine(eventMessage(e))
			}
			return
		}
		switch {
		case e.JobID != "":
			jobID = e.JobID
			live.Println("Job " + termui.SanitizeLine(jobID))
		case e.Queue != nil:
			if pos := e.Queue.GetPosition(); pos > 0 {
				live.Draw(fmt.Sprintf("queued: position %d of %d", pos, e.Queue.GetQueueLength()))
			}
		case e.Event != nil:
			if e.Event.GetMessage() != "" {
				live.Println(termui.SanitizeLine(e.Event.GetMessage()))
			}
		case e.Progress != nil:
			if live.TTY() {
				live.Draw(progressBar(e.Progress, live.Width(), time.Since(start)))
			} else if key := fmt.Sprint(e.Progress.GetStage(), e.Progress.GetStep()); key != lastPlain {
				// Without a terminal: one line per stage and per step.
				lastPlain = key
				live.Draw(progressText(e.Progress))
			}
		}
	})
	if err != nil {
		return a.at(genailab.ServiceOrchestrator, err)
	}
	live.Clear()
	if out == "" {
		out = res.JobID + ".png"
	}
	if err := writeFileAtomic(out, res.Image.GetPng()); err != nil {
		return err
	}
	if a.g.json {
		if jsonErr != nil {
			return jsonErr
		}
		img := proto.Clone(res.Image).(*diffusionv1.ImageResult)
		img.Png = nil // in the file
		return a.printJSONLine(&orchestratorv1.GenerateImageResponse{Payload: &orchestratorv1.GenerateImageResponse_Result{Result: img}})
	}
	img := res.Image
	line := fmt.Sprintf("Saved %s: %dx%d, seed %d, %s", out, img.GetWidth(), img.GetHeight(), img.GetSeed(),
		termui.Duration(time.Duration(img.GetTimeTakenMs())*time.Millisecond))
	if img.GetDemoEngine() {
		line += " (demo stand-in: a synthetic image)"
	}
	fmt.Fprintln(a.Stdout, line+".")
	return nil
}

// eventMessage turns a client event back into the stream message it came from.
func eventMessage(e genailab.Event) *orchestratorv1.GenerateImageResponse {
	r := &orchestratorv1.GenerateImageResponse{}
	switch {
	case e.JobID != "":
		r.Payload = &orchestratorv1.GenerateImageResponse_JobId{JobId: e.JobID}
	case e.Queue != nil:
		r.Payload = &orchestratorv1.GenerateImageResponse_Queue{Queue: e.Queue}
	case e.Event != nil:
		r.Payload = &orchestratorv1.GenerateImageResponse_Event{Event: e.Event}
	case e.Progress != nil:
		r.Payload = &orchestratorv1.GenerateImageResponse_Progress{Progress: e.Progress}
	}
	return r
}

// progressBar is the live line on a terminal: stage, bar, percent, step, speed, time.
func progressBar(p *diffusionv1.Progress, width int, elapsed time.Duration) string {
	stage := fmt.Sprintf("%-9s", enumName(p.GetStage().String(), "STAGE_"))
	tail := fmt.Sprintf("%3.0f%%", p.GetPercent())
	if n := p.GetTotalSteps(); n > 0 {
		tail += fmt.Sprintf("  step %d/%d", p.GetStep(), n)
	}
	if s := p.GetStepsPerSecond(); s > 0 {
		tail += fmt.Sprintf("  %.2f it/s", s)
	}
	tail += "  " + termui.Duration(elapsed.Round(100*time.Millisecond))
	barWidth := width - len(stage) - len(tail) - 5 // two spaces, two brackets, the last column
	if barWidth < 10 {
		barWidth = 10
	}
	return fmt.Sprintf("%s %s %s", stage, termui.Bar(barWidth, p.GetPercent()/100), tail)
}

// writeFileAtomic writes data to path through a temporary file and a rename, so that a
// failure never leaves half a file. A symbolic link is followed; a path that is not a
// regular file (/dev/null, a pipe) is written directly, never replaced.
func writeFileAtomic(path string, data []byte) error {
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		if fi.IsDir() {
			return fmt.Errorf("write %s: is a directory", path)
		}
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		_, werr := f.Write(data)
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return fmt.Errorf("write %s: %w", path, werr)
		}
		return nil
	}
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	name := tmp.Name()
	_, werr := tmp.Write(data)
	if werr == nil {
		werr = tmp.Chmod(0o644)
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(name, path)
	}
	if werr != nil {
		os.Remove(name)
		return fmt.Errorf("write %s: %w", path, werr)
	}
	return nil
}

// listSamplers asks the diffusion service which samplers it accepts (the API's one list).
func listSamplers(ctx context.Context, c *genailab.Client) ([]string, error) {
	in, err := c.Diffusion().GetInfo(ctx, &diffusionv1.GetInfoRequest{})
	if err != nil {
		return nil, err
	}
	return in.GetInfo().GetSamplers(), nil
}

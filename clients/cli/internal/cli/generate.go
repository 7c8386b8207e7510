package cli

import (
	"context"
	"fmt"
	"io"
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
	"github.com/genailab/genailab/pkg/imagereq"
)

// imageFlags are the flags of the commands that make images (generate, edit).
type imageFlags struct {
	p               diffusionv1.ImageParams
	out             string
	cfgScale        float32
	seed            int64
	width, height   int32
	steps, n        int32
	preview         bool
	previewMethod   string
	previewInterval int32
	show            string
}

func (f *imageFlags) register(cmd *cobra.Command, a *App) {
	fl := cmd.Flags()
	fl.StringVarP(&f.out, "output", "o", "", "PNG file to write (default: <job id>.png; a batch adds -1, -2, ... before .png)")
	fl.StringVar(&f.p.NegativePrompt, "negative", "", "what to avoid")
	fl.Int32VarP(&f.width, "width", "W", 512, "width in pixels, a multiple of 64")
	fl.Int32VarP(&f.height, "height", "H", 512, "height in pixels, a multiple of 64")
	fl.Int32Var(&f.steps, "steps", 20, "sampling steps, 1..150")
	fl.Float32Var(&f.cfgScale, "cfg-scale", 7.5, "guidance scale, 0..30")
	fl.Int64Var(&f.seed, "seed", -1, "seed (default: random; the result says which)")
	fl.Int32VarP(&f.n, "count", "n", 1, "images in one batch (seeds seed, seed+1, ...)")
	fl.StringVar(&f.p.Sampler, "sampler", "", "sampler (default euler_a; 'genaictl diffusion status' lists the ones the service accepts)")
	fl.BoolVar(&f.preview, "preview", false, "write the engine's previews while it samples, to <output>.step-N.png (CLI engine mode only)")
	fl.StringVar(&f.previewMethod, "preview-method", "proj", "preview method: proj (fast, coarse), tae or vae")
	fl.Int32Var(&f.previewInterval, "preview-interval", 1, "sampling steps between previews")
	fl.StringVar(&f.show, "show", "auto", "show the image in the terminal: auto (when it is known to show images), kitty, iterm2 or none")
	_ = cmd.RegisterFlagCompletionFunc("sampler", func(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
		return a.complete(cmd, listSamplers)
	})
	_ = cmd.RegisterFlagCompletionFunc("preview-method", cobra.FixedCompletions([]string{"proj", "tae", "vae"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("show", cobra.FixedCompletions([]string{"auto", "kitty", "iterm2", "none"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.MarkFlagFilename("output", "png")
}

// params are the request: only the flags given are sent (a --steps 0 is the server's to
// refuse, no --steps is its default).
func (f *imageFlags) params(cmd *cobra.Command) (*diffusionv1.ImageParams, error) {
	p := proto.Clone(&f.p).(*diffusionv1.ImageParams)
	fl := cmd.Flags()
	if changed(fl, "cfg-scale") {
		p.CfgScale = &f.cfgScale
	}
	if changed(fl, "seed") {
		p.Seed = &f.seed
	}
	if changed(fl, "width") {
		p.Width = &f.width
	}
	if changed(fl, "height") {
		p.Height = &f.height
	}
	if changed(fl, "steps") {
		p.Steps = &f.steps
	}
	if changed(fl, "count") {
		p.N = &f.n
	}
	if f.preview || changed(fl, "preview-method") || changed(fl, "preview-interval") {
		m := imagereq.PreviewMethodProto(f.previewMethod)
		if m == diffusionv1.PreviewMethod_PREVIEW_METHOD_UNSPECIFIED {
			return nil, fmt.Errorf("--preview-method %q: want proj, tae or vae", f.previewMethod)
		}
		p.Preview = &diffusionv1.PreviewOptions{Method: m}
		if changed(fl, "preview-interval") {
			p.Preview.Interval = &f.previewInterval
		}
	}
	return p, nil
}

// showProtocol is how --show shows the images: auto is the terminal's protocol when the
// output is a terminal known to have one (termui.DetectImageProtocol), none with --json.
func (a *App) showProtocol(show string) (termui.ImageProtocol, error) {
	if show == "auto" {
		if !a.TTY || a.g.json {
			return termui.NoImages, nil
		}
		return termui.DetectImageProtocol(a.Getenv), nil
	}
	p, err := termui.ParseImageProtocol(show)
	if err != nil {
		return termui.NoImages, fmt.Errorf("--show %w", err)
	}
	if a.g.json {
		return termui.NoImages, nil
	}
	return p, nil
}

func (a *App) generateCmd() *cobra.Command {
	var f imageFlags
	cmd := &cobra.Command{
		Use:   `generate "PROMPT"`,
		Short: "Generate an image through the orchestrator, with a live progress bar",
		Long: `Generate an image. The orchestrator queues it, offloads the LLM when the image would
not fit next to it, generates, and brings the LLM back. A live bar shows the stage and
step; Ctrl-C cancels the generation on the server. The PNG is written to -o (default:
<job id>.png); 'genaictl jobs get ID -o FILE' fetches it again later. With --preview each
preview the engine writes while it samples is saved next to it (<output>.step-N.png);
-n makes a batch (one job, one engine run). In a terminal that shows images (kitty,
Ghostty, Konsole: kitty's protocol; iTerm2, WezTerm, mintty: iTerm2's) the image is shown
below its "Saved" line; --show names the protocol where it is not detected (in tmux or
screen, with passthrough set up), or none.`,
		Args: cobra.MinimumNArgs(1),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			p, err := f.params(cmd)
			if err != nil {
				return err
			}
			p.Prompt = strings.Join(args, " ")
			show, err := a.showProtocol(f.show)
			if err != nil {
				return err
			}
			c, err := a.dial(cmd)
			if err != nil {
				return err
			}
			return a.generate(cmd, c, p, f.out, show)
		}),
	}
	f.register(cmd, a)
	return cmd
}

func (a *App) editCmd() *cobra.Command {
	var f imageFlags
	var mask string
	var strength float32
	cmd := &cobra.Command{
		Use:   `edit IMAGE "PROMPT"`,
		Short: "Edit an image (img2img; inpainting with --mask) through the orchestrator",
		Long: `Edit IMAGE (PNG or JPEG, each side a multiple of 64) after PROMPT: stable-diffusion.cpp's
img2img, or inpainting with --mask (the image's size: white is repainted, black kept).
--strength is how much of the image is replaced (0..1, default 0.75). The output is the
image's size unless --width/--height say otherwise; the rest is as 'genaictl generate'.`,
		Args: cobra.MinimumNArgs(2),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			p, err := f.params(cmd)
			if err != nil {
				return err
			}
			p.Prompt = strings.Join(args[1:], " ")
			if p.InitImage, err = os.ReadFile(args[0]); err != nil {
				return fmt.Errorf("read the image: %w", err)
			}
			if mask != "" {
				if p.Mask, err = os.ReadFile(mask); err != nil {
					return fmt.Errorf("read the mask: %w", err)
				}
			}
			if changed(cmd.Flags(), "strength") {
				p.Strength = &strength
			}
			show, err := a.showProtocol(f.show)
			if err != nil {
				return err
			}
			c, err := a.dial(cmd)
			if err != nil {
				return err
			}
			return a.generate(cmd, c, p, f.out, show)
		}),
	}
	f.register(cmd, a)
	cmd.Flags().StringVar(&mask, "mask", "", "inpainting mask (PNG or JPEG of the image's size; white is repainted)")
	cmd.Flags().Float32Var(&strength, "strength", 0.75, "how much of the image is replaced, 0..1")
	_ = cmd.MarkFlagFilename("mask", "png", "jpg", "jpeg")
	return cmd
}

func (a *App) generate(cmd *cobra.Command, c *genailab.Client, p *diffusionv1.ImageParams, out string, show termui.ImageProtocol) error {
	live := a.live()
	defer live.Clear()
	start := time.Now()
	var jobID string
	var lastPlain string
	var jsonErr, previewErr error
	res, err := c.GenerateImage(cmd.Context(), p, func(e genailab.Event) {
		if e.JobID != "" {
			jobID = e.JobID
		}
		if pv := e.Progress.GetPreview(); pv != nil && previewErr == nil {
			// Written as they come, with or without --json: the files are the point.
			name := previewPath(out, jobID, pv)
			if previewErr = writeFileAtomic(name, pv.GetPng()); previewErr == nil && !a.g.json {
				live.Println(fmt.Sprintf("Preview of step %d: %s", pv.GetStep(), termui.SanitizeLine(name)))
			}
		}
		if a.g.json {
			if jsonErr == nil {
				jsonErr = a.printJSONLine(eventMessage(e))
			}
			return
		}
		switch {
		case e.JobID != "":
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
			} else if key := fmt.Sprint(e.Progress.GetStage(), e.Progress.GetImageIndex(), e.Progress.GetStep()); key != lastPlain {
				// Without a terminal: one line per stage and per step.
				lastPlain = key
				live.Draw(progressText(e.Progress))
			}
		}
	})
	if err != nil {
		return a.at(genailab.ServiceOrchestrator, err)
	}
	if previewErr != nil {
		return previewErr
	}
	live.Clear()
	if out == "" {
		out = res.JobID + ".png"
	}
	img := res.Image
	files := []string{out}
	if err := writeFileAtomic(out, img.GetPng()); err != nil {
		return err
	}
	for i, b := range img.GetBatch() {
		name := batchPath(out, i+1)
		if err := writeFileAtomic(name, b.GetPng()); err != nil {
			return err
		}
		files = append(files, name)
	}
	if a.g.json {
		if jsonErr != nil {
			return jsonErr
		}
		img := proto.Clone(res.Image).(*diffusionv1.ImageResult)
		img.Png = nil // in the file
		for _, b := range img.Batch {
			b.Png = nil
		}
		return a.printJSONLine(&orchestratorv1.GenerateImageResponse{Payload: &orchestratorv1.GenerateImageResponse_Result{Result: img}})
	}
	line := fmt.Sprintf("Saved %s: %dx%d, seed %d, %s", out, img.GetWidth(), img.GetHeight(), img.GetSeed(),
		termui.Duration(time.Duration(img.GetTimeTakenMs())*time.Millisecond))
	if img.GetDemoEngine() {
		line += " (demo stand-in: a synthetic image)"
	}
	fmt.Fprintln(a.Stdout, line+".")
	cols := min(max(a.Width/2, 16), 64)
	io.WriteString(a.Stdout, termui.InlineImage(show, img.GetPng(), cols))
	for i, b := range img.GetBatch() {
		fmt.Fprintf(a.Stdout, "Saved %s: %dx%d, seed %d.\n", files[i+1], b.GetWidth(), b.GetHeight(), b.GetSeed())
		io.WriteString(a.Stdout, termui.InlineImage(show, b.GetPng(), cols))
	}
	return nil
}

// batchPath is the file of image i (1-based after the first) of a batch: out with -i
// before its extension.
func batchPath(out string, i int) string {
	ext := filepath.Ext(out)
	return fmt.Sprintf("%s-%d%s", strings.TrimSuffix(out, ext), i, ext)
}

// previewPath is the file of a preview: the output's name (the job's when -o is not
// given) with .step-N before .png, and the batch image's -i.
func previewPath(out, jobID string, pv *diffusionv1.Preview) string {
	if out == "" {
		out = jobID + ".png"
	}
	if i := pv.GetImageIndex(); i > 0 {
		out = batchPath(out, int(i))
	}
	ext := filepath.Ext(out)
	return fmt.Sprintf("%s.step-%d.png", strings.TrimSuffix(out, ext), pv.GetStep())
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

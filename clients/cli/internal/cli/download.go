package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/genailab/genailab/clients/cli/internal/termui"
	genailab "github.com/genailab/genailab/clients/go"
	modelsv1 "github.com/genailab/genailab/gen/models/v1"
	"github.com/genailab/genailab/pkg/modelstore/presetid"
)

type downloadFlags struct {
	typ, id, name, sha256      string
	hfRepo, hfFile, hfRevision string
	hfToken                    string
	components                 []string
}

func (a *App) modelsDownloadCmd() *cobra.Command {
	var f downloadFlags
	cmd := &cobra.Command{
		Use:   "download [PRESET | URL]",
		Short: "Download a model (a preset, a URL, a Hugging Face file, or diffusion components) with a progress bar",
		Long: `Download a model into the host's store, showing bytes, rate, ETA and component.

` + fmt.Sprintf("  %-58s# a preset (see 'models presets')", "genaictl models download "+presetid.Qwen25Instruct05BQ4KM) + `
  genaictl models download --type llm https://host/m.gguf   # a URL
  genaictl models download --type llm --hf-repo owner/name --hf-file m-q4_k_m.gguf
  genaictl models download --type diffusion --id flux \
      --component diffusion_model=https://.../flux.gguf --component vae=https://.../ae.safetensors

Ctrl-C cancels the download on the server; its partial data is kept, and the same
command resumes it.`,
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: a.completePresets,
		RunE: run(func(cmd *cobra.Command, args []string) error {
			c, err := a.dial(cmd)
			if err != nil {
				return err
			}
			req, err := a.downloadRequest(cmd.Context(), c, f, args)
			if err != nil {
				return err
			}
			return a.download(cmd.Context(), c, req)
		}),
	}
	fl := cmd.Flags()
	typeFlag(cmd, &f.typ, "type of the model (required for a URL or Hugging Face file)")
	fl.StringVar(&f.id, "id", "", "id to install the model as (default: derived from the file name or preset)")
	fl.StringVar(&f.name, "name", "", "display name (default: the id)")
	fl.StringVar(&f.sha256, "sha256", "", "expected sha256 of the file")
	fl.StringVar(&f.hfRepo, "hf-repo", "", "Hugging Face repository, owner/name")
	fl.StringVar(&f.hfFile, "hf-file", "", "file in the Hugging Face repository")
	fl.StringVar(&f.hfRevision, "hf-revision", "", "branch, tag or commit (default main)")
	fl.StringVar(&f.hfToken, "hf-token", "", "Hugging Face token for gated repositories (env HF_TOKEN); used for this download only")
	fl.StringArrayVar(&f.components, "component", nil, "a diffusion model part, NAME=URL (diffusion_model, vae, clip_l, clip_g, t5xxl, llm); repeatable")
	return cmd
}

func (a *App) completePresets(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return completeFromStores(a, cmd, allTypes, listPresets)
}

// downloadRequest builds the request from the arguments; the service validates it.
func (a *App) downloadRequest(ctx context.Context, c *genailab.Client, f downloadFlags, args []string) (*modelsv1.DownloadModelRequest, error) {
	req := &modelsv1.DownloadModelRequest{Id: f.id, Name: f.name, HuggingFaceToken: f.hfToken}
	if req.HuggingFaceToken == "" {
		req.HuggingFaceToken = a.Getenv("HF_TOKEN")
	}
	var arg string
	if len(args) == 1 {
		arg = args[0]
	}
	isURL := strings.HasPrefix(arg, "http://") || strings.HasPrefix(arg, "https://")
	sources := 0
	for _, set := range []bool{arg != "", f.hfRepo != "" || f.hfFile != "", len(f.components) > 0} {
		if set {
			sources++
		}
	}
	if sources != 1 {
		return nil, errors.New("give exactly one source: a preset id, a URL, --hf-repo/--hf-file, or --component")
	}
	if f.typ != "" {
		t, err := genailab.ParseModelType(f.typ)
		if err != nil {
			return nil, err
		}
		req.Type = t
	}
	switch {
	case arg != "" && !isURL: // a preset: its type comes from the catalog
		req.PresetId = arg
		if req.Type == modelsv1.ModelType_MODEL_TYPE_UNSPECIFIED {
			t, err := a.presetType(ctx, c, arg)
			if err != nil {
				return nil, err
			}
			req.Type = t
		}
	case isURL:
		req.Source = &modelsv1.ModelSource{Source: &modelsv1.ModelSource_Url{Url: arg}, Sha256: f.sha256}
	case f.hfRepo != "" || f.hfFile != "":
		req.Source = &modelsv1.ModelSource{Source: &modelsv1.ModelSource_HuggingFace{HuggingFace: &modelsv1.HuggingFaceSource{
			Repo: f.hfRepo, File: f.hfFile, Revision: f.hfRevision}}, Sha256: f.sha256}
	default:
		if req.Type == modelsv1.ModelType_MODEL_TYPE_UNSPECIFIED {
			req.Type = modelsv1.ModelType_MODEL_TYPE_DIFFUSION
		}
		for _, comp := range f.components {
			name, url, ok := strings.Cut(comp, "=")
			if !ok || name == "" || url == "" {
				return nil, fmt.Errorf("--component %q: want NAME=URL", comp)
			}
			req.Components = append(req.Components, &modelsv1.ComponentSource{Component: name,
				Source: &modelsv1.ModelSource{Source: &modelsv1.ModelSource_Url{Url: url}}})
		}
	}
	if req.Type == modelsv1.ModelType_MODEL_TYPE_UNSPECIFIED {
		return nil, errors.New("--type is required (llm or diffusion)")
	}
	return req, nil
}

// presetType finds which store offers a preset.
func (a *App) presetType(ctx context.Context, c *genailab.Client, id string) (modelsv1.ModelType, error) {
	for _, t := range allTypes {
		resp, err := c.Models(t).ListPresets(ctx, &modelsv1.ListPresetsRequest{Type: t})
		if err != nil {
			return 0, a.at(serviceOf(t), err)
		}
		for _, p := range resp.GetPresets() {
			if p.GetId() == id {
				return t, nil
			}
		}
	}
	return 0, fmt.Errorf("no preset %q (see 'genaictl models presets'; a URL must start with http:// or https://)", id)
}

// download streams a download with a progress bar; an interrupted one is cancelled on the server.
func (a *App) download(ctx context.Context, c *genailab.Client, req *modelsv1.DownloadModelRequest) error {
	store := c.Models(req.GetType())
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := store.DownloadModel(sctx, req)
	if err != nil {
		return a.at(serviceOf(req.GetType()), err)
	}
	live := a.live()
	defer live.Clear()
	var downloadID string
	pl := plainProgress{}
	for {
		msg, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return errors.New("the download ended without the installed model")
			}
			if ctx.Err() != nil && downloadID != "" {
				live.Clear()
				cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				defer ccancel()
				if _, cerr := store.CancelDownload(cctx, &modelsv1.CancelDownloadRequest{Type: req.GetType(), DownloadId: downloadID}); cerr != nil {
					return fmt.Errorf("interrupted; cancelling download %s on the server failed: %s", downloadID, statusText(cerr))
				}
				return fmt.Errorf("interrupted; download %s cancelled on the server (its partial data is kept: run the same command to resume)", downloadID)
			}
			return a.at(serviceOf(req.GetType()), err)
		}
		if a.g.json {
			if err := a.printJSONLine(msg); err != nil {
				return err
			}
		}
		switch e := msg.GetEvent().(type) {
		case *modelsv1.DownloadModelResponse_Progress:
			downloadID = e.Progress.GetDownloadId()
			if a.g.json {
				continue
			}
			if live.TTY() {
				live.Draw(downloadLine(e.Progress, live.Width()))
			} else if line, ok := pl.next(e.Progress); ok {
				live.Draw(line)
			}
		case *modelsv1.DownloadModelResponse_Model:
			live.Clear()
			if a.g.json {
				return nil
			}
			m := e.Model
			fmt.Fprintf(a.Stdout, "Downloaded %s model %s: %d files, %s.\n", typeName(m.GetType()), termui.SanitizeLine(m.GetId()), len(m.GetFiles()), termui.Bytes(m.GetSizeBytes()))
			return nil
		}
	}
}

// downloadLine is the bar on a terminal: component, bar, bytes, rate, ETA.
func downloadLine(p *modelsv1.DownloadProgress, width int) string {
	comp := termui.SanitizeLine(p.GetComponent())
	if n := p.GetComponentCount(); n > 1 {
		comp = fmt.Sprintf("%s (%d/%d)", comp, p.GetComponentIndex()+1, n)
	}
	done, total := p.GetDownloadedBytes(), p.GetTotalBytes()
	sizes := termui.Bytes(done)
	frac := 0.0
	if total > 0 {
		sizes += " / " + termui.Bytes(total)
		frac = float64(done) / float64(total)
	}
	tail := fmt.Sprintf("%s  %s  ETA %s", sizes, termui.Rate(p.GetBytesPerSecond()), eta(p.GetEtaMs()))
	barWidth := width - len([]rune(comp)) - len([]rune(tail)) - 5 // two spaces, two brackets, the last column
	if barWidth < 10 {
		barWidth = 10
	}
	return fmt.Sprintf("%s %s %s", comp, termui.Bar(barWidth, frac), tail)
}

func eta(ms int64) string {
	if ms < 0 {
		return "-"
	}
	return termui.Duration(time.Duration(ms) * time.Millisecond)
}

// plainProgress decides which progress messages become lines when stdout is not a
// terminal: a new component, every 10 % of the total, or every 5 s when the total is unknown.
type plainProgress struct {
	comp    string
	decile  int64
	printed time.Time
}

func (p *plainProgress) next(m *modelsv1.DownloadProgress) (string, bool) {
	done, total := m.GetDownloadedBytes(), m.GetTotalBytes()
	line := fmt.Sprintf("%s: %s", termui.SanitizeLine(m.GetComponent()), termui.Bytes(done))
	if total > 0 {
		line += fmt.Sprintf(" of %s (%s)", termui.Bytes(total), termui.Percent(done, total))
	}
	line += fmt.Sprintf(", %s, ETA %s", termui.Rate(m.GetBytesPerSecond()), eta(m.GetEtaMs()))
	decile := int64(-1)
	if total > 0 {
		decile = int64(10 * done / total)
	}
	switch {
	case m.GetComponent() != p.comp:
	case total > 0 && decile > p.decile:
	case total == 0 && time.Since(p.printed) >= 5*time.Second:
	default:
		return "", false
	}
	p.comp, p.decile, p.printed = m.GetComponent(), decile, time.Now()
	return line, true
}

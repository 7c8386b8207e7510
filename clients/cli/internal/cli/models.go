package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/genailab/genailab/clients/cli/internal/termui"
	genailab "github.com/genailab/genailab/clients/go"
	modelsv1 "github.com/genailab/genailab/gen/models/v1"
)

var allTypes = []modelsv1.ModelType{modelsv1.ModelType_MODEL_TYPE_LLM, modelsv1.ModelType_MODEL_TYPE_DIFFUSION}

// typeName is the short name of a model type ("llm", "diffusion").
func typeName(t modelsv1.ModelType) string {
	return strings.ToLower(strings.TrimPrefix(t.String(), "MODEL_TYPE_"))
}

func serviceOf(t modelsv1.ModelType) genailab.Service {
	if t == modelsv1.ModelType_MODEL_TYPE_DIFFUSION {
		return genailab.ServiceDiffusion
	}
	return genailab.ServiceLLM
}

// types returns the types a --type flag selects: one, or both when it is empty.
func types(flag string) ([]modelsv1.ModelType, error) {
	if flag == "" {
		return allTypes, nil
	}
	t, err := genailab.ParseModelType(flag)
	if err != nil {
		return nil, err
	}
	return []modelsv1.ModelType{t}, nil
}

func typeFlag(cmd *cobra.Command, p *string, what string) {
	cmd.Flags().StringVarP(p, "type", "t", "", what+" (llm or diffusion)")
	_ = cmd.RegisterFlagCompletionFunc("type", cobra.FixedCompletions([]string{"llm", "diffusion"}, cobra.ShellCompDirectiveNoFileComp))
}

func (a *App) modelsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "models", Aliases: []string{"model"}, Short: "Installed models, presets, downloads, disk usage"}
	cmd.AddCommand(
		storeListCmd(a, "list", "List installed models (both types unless --type)", "only models of this type", listModels,
			func(m []*modelsv1.Model) *modelsv1.ListModelsResponse { return &modelsv1.ListModelsResponse{Models: m} }, a.printModels),
		storeListCmd(a, "presets", "List the built-in catalog of models offered for one-click download", "only presets of this type", listPresets,
			func(p []*modelsv1.Preset) *modelsv1.ListPresetsResponse {
				return &modelsv1.ListPresetsResponse{Presets: p}
			}, a.printPresets),
		a.modelsDownloadCmd(), a.modelsDeleteCmd(), a.modelsVerifyCmd(), a.modelsUsageCmd())
	return cmd
}

// storeListCmd is a command that lists what list returns from the stores its --type selects
// (both when it is not given), as one answer (wrap) that show prints.
func storeListCmd[T any, R proto.Message](a *App, use, short, typeWhat string,
	list func(context.Context, *genailab.Client, modelsv1.ModelType) ([]T, error), wrap func([]T) R, show func(R) error) *cobra.Command {
	var typ string
	cmd := &cobra.Command{Use: use, Short: short, Args: noArgs, RunE: run(func(cmd *cobra.Command, _ []string) error {
		items, err := fromStores(a, cmd, typ, list)
		if err != nil {
			return err
		}
		return printAnswer(a, wrap(items), show)
	})}
	typeFlag(cmd, &typ, typeWhat)
	return cmd
}

// printModels is the table of installed models.
func (a *App) printModels(all *modelsv1.ListModelsResponse) error {
	if len(all.GetModels()) == 0 {
		fmt.Fprintln(a.Stdout, "No models installed. See 'genaictl models presets' and 'genaictl models download'.")
		return nil
	}
	w := a.table()
	fmt.Fprintln(w, "TYPE\tID\tSIZE\tFORMAT\tFILES\tIN USE\tNAME")
	for _, m := range all.GetModels() {
		format := "-"
		if g := m.GetGguf(); g != nil {
			format = joinNonEmpty(" ", g.GetArchitecture(), g.GetFileType())
		}
		inUse := ""
		if m.GetInUse() {
			inUse = "yes"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", typeName(m.GetType()), termui.SanitizeLine(m.GetId()), termui.Bytes(m.GetSizeBytes()),
			termui.SanitizeLine(format), len(m.GetFiles()), inUse, termui.SanitizeLine(m.GetName()))
	}
	return w.Flush()
}

// printPresets is the table of presets.
func (a *App) printPresets(all *modelsv1.ListPresetsResponse) error {
	w := a.table()
	fmt.Fprintln(w, "TYPE\tPRESET\tSIZE\tPARTS\tNAME")
	for _, p := range all.GetPresets() {
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\n", typeName(p.GetType()), termui.SanitizeLine(p.GetId()), termui.Bytes(p.GetSizeBytes()),
			len(p.GetComponents()), termui.SanitizeLine(p.GetName()))
	}
	return w.Flush()
}

// listModels asks the store of type t for its installed models.
func listModels(ctx context.Context, c *genailab.Client, t modelsv1.ModelType) ([]*modelsv1.Model, error) {
	resp, err := c.Models(t).ListModels(ctx, &modelsv1.ListModelsRequest{Type: t})
	return resp.GetModels(), err
}

// listPresets asks the store of type t for its catalog of presets.
func listPresets(ctx context.Context, c *genailab.Client, t modelsv1.ModelType) ([]*modelsv1.Preset, error) {
	resp, err := c.Models(t).ListPresets(ctx, &modelsv1.ListPresetsRequest{Type: t})
	return resp.GetPresets(), err
}

// fromStores joins what list returns from the store of each type that typ (a --type value)
// selects, both when it is empty; the first error stops it, attributed to that store's service.
func fromStores[T any](a *App, cmd *cobra.Command, typ string,
	list func(context.Context, *genailab.Client, modelsv1.ModelType) ([]T, error)) ([]T, error) {
	ts, err := types(typ)
	if err != nil {
		return nil, err
	}
	c, err := a.dial(cmd)
	if err != nil {
		return nil, err
	}
	var all []T
	for _, t := range ts {
		items, err := list(cmd.Context(), c, t)
		if err != nil {
			return nil, a.at(serviceOf(t), err)
		}
		all = append(all, items...)
	}
	return all, nil
}

// completeFromStores completes the ids of what list returns from the stores of types ts,
// each described by its type and name; a store that does not answer offers none.
func completeFromStores[T interface {
	GetId() string
	GetName() string
}](a *App, cmd *cobra.Command, ts []modelsv1.ModelType,
	list func(context.Context, *genailab.Client, modelsv1.ModelType) ([]T, error)) ([]string, cobra.ShellCompDirective) {
	return a.complete(cmd, func(ctx context.Context, c *genailab.Client) ([]string, error) {
		var ids []string
		for _, t := range ts {
			items, err := list(ctx, c, t)
			if err != nil {
				continue
			}
			for _, it := range items {
				ids = append(ids, it.GetId()+"\t"+typeName(t)+": "+it.GetName())
			}
		}
		return ids, nil
	})
}

// findModel returns the type of an installed model: the --type given, or the one store
// that has it.
func (a *App) findModel(cmd *cobra.Command, id, typ string) (modelsv1.ModelType, error) {
	if typ != "" {
		return genailab.ParseModelType(typ)
	}
	c, err := a.dial(cmd)
	if err != nil {
		return 0, err
	}
	var found []modelsv1.ModelType
	for _, t := range allTypes {
		_, err := c.Models(t).GetModel(cmd.Context(), &modelsv1.GetModelRequest{Type: t, Id: id})
		switch {
		case err == nil:
			found = append(found, t)
		case status.Code(err) == codes.NotFound || status.Code(err) == codes.InvalidArgument:
		default:
			return 0, a.at(serviceOf(t), err)
		}
	}
	switch len(found) {
	case 0:
		return 0, fmt.Errorf("model %q not found (neither an llm nor a diffusion model)", id)
	case 1:
		return found[0], nil
	}
	return 0, fmt.Errorf("model %q exists as an llm and a diffusion model: choose one with --type", id)
}

// completeModels completes installed model ids (the first argument).
func (a *App) completeModels(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return completeFromStores(a, cmd, allTypes, listModels)
}

// completeModelsOf completes model ids of one type (a --model flag).
func (a *App) completeModelsOf(t modelsv1.ModelType) cobra.CompletionFunc {
	return func(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
		return completeFromStores(a, cmd, []modelsv1.ModelType{t}, listModels)
	}
}

// modelCmd is a command about one installed model, its argument: it finds the model's store
// (--type, or the one store that has it) and makes one call to it (see call); where after is
// given, the command's error is what after makes of the answer, once it is printed.
func modelCmd[R proto.Message](a *App, use, short string,
	rpc func(ctx context.Context, c *genailab.Client, t modelsv1.ModelType, id string) (R, error),
	show func(t modelsv1.ModelType, id string, resp R) error, after func(id string, resp R) error) *cobra.Command {
	var typ string
	cmd := &cobra.Command{Use: use + " MODEL", Short: short, Args: exactArgs(1), ValidArgsFunction: a.completeModels,
		RunE: run(func(cmd *cobra.Command, args []string) error {
			t, err := a.findModel(cmd, args[0], typ)
			if err != nil {
				return err
			}
			var resp R
			err = call(a, cmd, serviceOf(t), func(ctx context.Context, c *genailab.Client) (R, error) {
				resp, err = rpc(ctx, c, t, args[0])
				return resp, err
			}, func(r R) error { return show(t, args[0], r) })
			if err != nil || after == nil {
				return err
			}
			return after(args[0], resp)
		})}
	typeFlag(cmd, &typ, "the model's type (default: the store that has it)")
	return cmd
}

func (a *App) modelsDeleteCmd() *cobra.Command {
	var force bool
	cmd := modelCmd(a, "delete", "Delete an installed model and its files",
		func(ctx context.Context, c *genailab.Client, t modelsv1.ModelType, id string) (*modelsv1.DeleteModelResponse, error) {
			return c.Models(t).DeleteModel(ctx, &modelsv1.DeleteModelRequest{Type: t, Id: id, Force: force})
		}, func(t modelsv1.ModelType, id string, resp *modelsv1.DeleteModelResponse) error {
			_, err := fmt.Fprintf(a.Stdout, "Deleted %s model %s (freed %s).\n", typeName(t), termui.SanitizeLine(id), termui.Bytes(resp.GetFreedBytes()))
			return err
		}, nil)
	cmd.Aliases = []string{"rm"}
	cmd.Flags().BoolVar(&force, "force", false, "delete even while a running server uses it")
	return cmd
}

// errVerifyFailed is returned (after the report) when a model's files do not match.
var errVerifyFailed = errors.New("verification failed")

func (a *App) modelsVerifyCmd() *cobra.Command {
	return modelCmd(a, "verify", "Re-hash a model's files and compare them with the recorded sizes and sha256",
		func(ctx context.Context, c *genailab.Client, t modelsv1.ModelType, id string) (*modelsv1.VerifyModelResponse, error) {
			return c.Models(t).VerifyModel(ctx, &modelsv1.VerifyModelRequest{Type: t, Id: id})
		}, func(_ modelsv1.ModelType, id string, resp *modelsv1.VerifyModelResponse) error {
			return a.printVerify(id, resp)
		},
		func(id string, resp *modelsv1.VerifyModelResponse) error {
			if resp.GetOk() {
				return nil
			}
			bad := 0
			for _, f := range resp.GetFiles() {
				if !f.GetOk() {
					bad++
				}
			}
			return fmt.Errorf("%w: %d of %d files of %s do not match their record", errVerifyFailed, bad, len(resp.GetFiles()), id)
		})
}

// printVerify is the table of a model's verified files, and a line when all match.
func (a *App) printVerify(id string, resp *modelsv1.VerifyModelResponse) error {
	w := a.table()
	fmt.Fprintln(w, "RESULT\tFILE\tSIZE\tSHA256\tPROBLEM")
	for _, f := range resp.GetFiles() {
		result := "ok"
		if !f.GetOk() {
			result = "FAILED"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", result, termui.SanitizeLine(f.GetName()), termui.Bytes(f.GetActualSizeBytes()),
			short(f.GetActualSha256(), 16), termui.SanitizeLine(f.GetProblem()))
	}
	if err := w.Flush(); err != nil || !resp.GetOk() {
		return err
	}
	_, err := fmt.Fprintf(a.Stdout, "%s: all %d files match.\n", termui.SanitizeLine(id), len(resp.GetFiles()))
	return err
}

func (a *App) modelsUsageCmd() *cobra.Command {
	var typ string
	cmd := &cobra.Command{
		Use:   "usage",
		Short: "Disk space used by models, unfinished downloads, and free",
		Args:  noArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			ts, err := types(typ)
			if err != nil {
				return err
			}
			c, err := a.dial(cmd)
			if err != nil {
				return err
			}
			var keys []string
			var msgs []proto.Message
			var resps []*modelsv1.GetStorageUsageResponse
			for _, t := range ts {
				resp, err := c.Models(t).GetStorageUsage(cmd.Context(), &modelsv1.GetStorageUsageRequest{Type: t})
				if err != nil {
					return a.at(serviceOf(t), err)
				}
				keys, msgs, resps = append(keys, typeName(t)), append(msgs, resp), append(resps, resp)
			}
			if a.g.json {
				if len(msgs) == 1 {
					return a.printJSON(msgs[0])
				}
				return a.printJSONObject(keys, msgs)
			}
			w := a.table()
			fmt.Fprintln(w, "TYPE\tMODELS\tUSED\tPARTIAL\tFREE")
			for i, r := range resps {
				fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\n", keys[i], len(r.GetModels()), termui.Bytes(r.GetUsedBytes()), termui.Bytes(r.GetPartialBytes()), termui.Bytes(r.GetFreeBytes()))
			}
			if err := w.Flush(); err != nil {
				return err
			}
			for i, r := range resps {
				for _, m := range r.GetModels() {
					fmt.Fprintf(a.Stdout, "  %s/%s: %s\n", keys[i], termui.SanitizeLine(m.GetId()), termui.Bytes(m.GetSizeBytes()))
				}
			}
			return nil
		}),
	}
	typeFlag(cmd, &typ, "only this type")
	return cmd
}

// short cuts a hash for display.
func short(s string, n int) string {
	if len(s) <= n {
		if s == "" {
			return "-"
		}
		return s
	}
	return s[:n] + "…"
}

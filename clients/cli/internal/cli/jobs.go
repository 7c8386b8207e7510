package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/genailab/genailab/clients/cli/internal/termui"
	genailab "github.com/genailab/genailab/clients/go"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
)

var jobStatuses = []string{"queued", "running", "succeeded", "failed", "cancelled"}

func (a *App) jobsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "jobs", Aliases: []string{"job"}, Short: "Image jobs: the queue and the gallery of past images"}
	cmd.AddCommand(a.jobsListCmd(), a.jobsGetCmd(), a.jobsCancelCmd(), a.jobsDeleteCmd())
	return cmd
}

func (a *App) jobsListCmd() *cobra.Command {
	var statusName string
	var limit int32
	cmd := callCmd(a, "list", "List jobs, newest first", noArgs, genailab.ServiceOrchestrator,
		func(ctx context.Context, c *genailab.Client, _ []string) (*orchestratorv1.ListJobsResponse, error) {
			req := &orchestratorv1.ListJobsRequest{PageSize: limit}
			if statusName != "" {
				v, ok := orchestratorv1.JobStatus_value["JOB_STATUS_"+strings.ToUpper(statusName)]
				if !ok || v == 0 {
					return nil, fmt.Errorf("--status %q: want one of %s", statusName, strings.Join(jobStatuses, ", "))
				}
				req.Status = orchestratorv1.JobStatus(v)
			}
			return c.Orchestrator().ListJobs(ctx, req)
		}, a.printJobs)
	cmd.Flags().StringVar(&statusName, "status", "", "only jobs with this status ("+strings.Join(jobStatuses, ", ")+")")
	cmd.Flags().Int32Var(&limit, "limit", 50, "at most this many jobs")
	_ = cmd.RegisterFlagCompletionFunc("status", cobra.FixedCompletions(jobStatuses, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// printJobs is the table of jobs.
func (a *App) printJobs(resp *orchestratorv1.ListJobsResponse) error {
	if len(resp.GetJobs()) == 0 {
		fmt.Fprintln(a.Stdout, "No jobs.")
		return nil
	}
	w := a.table()
	fmt.Fprintln(w, "JOB\tSTATUS\tSIZE\tSTEPS\tSEED\tCREATED\tTOOK\tPROMPT")
	for _, j := range resp.GetJobs() {
		p := j.GetParams()
		size := fmt.Sprintf("%dx%d", p.GetWidth(), p.GetHeight())
		if r := j.GetResult(); r != nil {
			size = fmt.Sprintf("%dx%d", r.GetWidth(), r.GetHeight())
		}
		seed := "-"
		if r := j.GetResult(); r != nil {
			seed = fmt.Sprint(r.GetSeed())
		} else if p.Seed != nil {
			seed = fmt.Sprint(p.GetSeed())
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", j.GetId(), jobStatus(j), size, p.GetSteps(), seed,
			when(j.GetCreatedAt()), took(j), termui.Fit(termui.SanitizeLine(p.GetPrompt()), 40))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if t := resp.GetNextPageToken(); t != "" {
		fmt.Fprintf(a.Stdout, "(more jobs: raise --limit)\n")
	}
	return nil
}

func jobStatus(j *orchestratorv1.Job) string {
	s := enumName(j.GetStatus().String(), "JOB_STATUS_")
	if j.GetStatus() == orchestratorv1.JobStatus_JOB_STATUS_QUEUED && j.GetQueuePosition() > 0 {
		s += fmt.Sprintf(" (#%d)", j.GetQueuePosition())
	}
	if j.GetStatus() == orchestratorv1.JobStatus_JOB_STATUS_RUNNING && j.GetProgress() != nil {
		s += fmt.Sprintf(" (%.0f%%)", j.GetProgress().GetPercent())
	}
	return s
}

func took(j *orchestratorv1.Job) string {
	if j.GetStartedAt() == nil || j.GetFinishedAt() == nil {
		return "-"
	}
	return termui.Duration(j.GetFinishedAt().AsTime().Sub(j.GetStartedAt().AsTime()))
}

func (a *App) completeJobs(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return a.complete(cmd, func(ctx context.Context, c *genailab.Client) ([]string, error) {
		resp, err := c.Orchestrator().ListJobs(ctx, &orchestratorv1.ListJobsRequest{PageSize: 100})
		if err != nil {
			return nil, err
		}
		var ids []string
		for _, j := range resp.GetJobs() {
			ids = append(ids, j.GetId()+"\t"+jobStatus(j)+": "+termui.Fit(termui.SanitizeLine(j.GetParams().GetPrompt()), 40))
		}
		return ids, nil
	})
}

func (a *App) jobsGetCmd() *cobra.Command {
	var out string
	cmd := callCmd(a, "get JOB", "Show a job; -o saves its image", exactArgs(1), genailab.ServiceOrchestrator,
		func(ctx context.Context, c *genailab.Client, args []string) (*orchestratorv1.GetJobResponse, error) {
			resp, err := c.Orchestrator().GetJob(ctx, &orchestratorv1.GetJobRequest{Id: args[0], IncludeImage: out != ""})
			if err != nil || out == "" {
				return resp, err
			}
			return resp, saveImage(resp.GetJob(), out)
		}, func(resp *orchestratorv1.GetJobResponse) error { return a.printJob(resp.GetJob(), out) })
	cmd.ValidArgsFunction = a.completeJobs
	cmd.Flags().StringVarP(&out, "output", "o", "", "write the job's PNG to this file")
	_ = cmd.MarkFlagFilename("output", "png")
	return cmd
}

// saveImage writes a finished job's PNG to out and drops it from j.
func saveImage(j *orchestratorv1.Job, out string) error {
	png := j.GetResult().GetPng()
	if len(png) == 0 {
		return fmt.Errorf("job %s has no image (status %s)", j.GetId(), jobStatus(j))
	}
	if err := writeFileAtomic(out, png); err != nil {
		return err
	}
	j.Result.Png = nil
	return nil
}

// printJob shows one job (saved: the file its image was written to, "" when none).
func (a *App) printJob(j *orchestratorv1.Job, saved string) error {
	p := j.GetParams()
	pairs := []string{
		"Job", j.GetId(),
		"Status", jobStatus(j),
		"Prompt", termui.SanitizeLine(p.GetPrompt()),
	}
	if p.GetNegativePrompt() != "" {
		pairs = append(pairs, "Negative", termui.SanitizeLine(p.GetNegativePrompt()))
	}
	if r := j.GetResult(); r != nil {
		rp := r.GetParams()
		pairs = append(pairs, "Image", fmt.Sprintf("%dx%d, seed %d, %d steps, cfg %.1f, %s", r.GetWidth(), r.GetHeight(), r.GetSeed(),
			rp.GetSteps(), rp.GetCfgScale(), termui.SanitizeLine(rp.GetSampler())))
		if r.GetDemoEngine() {
			pairs = append(pairs, "Engine", "demo stand-in (synthetic image)")
		}
	} else {
		pairs = append(pairs, "Size", fmt.Sprintf("%dx%d, %d steps", p.GetWidth(), p.GetHeight(), p.GetSteps()))
	}
	if pr := j.GetProgress(); pr != nil && j.GetStatus() == orchestratorv1.JobStatus_JOB_STATUS_RUNNING {
		pairs = append(pairs, "Progress", progressText(pr))
	}
	pairs = append(pairs, "Created", when(j.GetCreatedAt()), "Started", when(j.GetStartedAt()), "Finished", when(j.GetFinishedAt()), "Took", took(j))
	if j.GetOffloaded() {
		pairs = append(pairs, "LLM offloaded", "yes")
	}
	if e := j.GetError(); e != "" {
		pairs = append(pairs, "Error", oneLine(e))
	}
	if saved != "" {
		pairs = append(pairs, "Saved", saved)
	}
	return a.kv(pairs...)
}

func (a *App) jobsCancelCmd() *cobra.Command {
	cmd := callCmd(a, "cancel JOB", "Cancel a queued or running job", exactArgs(1), genailab.ServiceOrchestrator,
		func(ctx context.Context, c *genailab.Client, args []string) (*orchestratorv1.CancelJobResponse, error) {
			resp, err := c.Orchestrator().CancelJob(ctx, &orchestratorv1.CancelJobRequest{Id: args[0]})
			// A running job stops asynchronously: follow it to its end (bounded).
			if err == nil && !ended(resp.GetJob()) {
				if j := a.waitJob(ctx, c, args[0], 15*time.Second); j != nil {
					resp.Job = j
				}
			}
			return resp, err
		}, func(resp *orchestratorv1.CancelJobResponse) error {
			_, err := fmt.Fprintf(a.Stdout, "Job %s: %s.\n", resp.GetJob().GetId(), jobStatus(resp.GetJob()))
			return err
		})
	cmd.ValidArgsFunction = a.completeJobs
	return cmd
}

func (a *App) jobsDeleteCmd() *cobra.Command {
	var id string
	cmd := callCmd(a, "delete JOB", "Delete a job and its stored image (cancelling it first if it is still queued or running)",
		exactArgs(1), genailab.ServiceOrchestrator,
		func(ctx context.Context, c *genailab.Client, args []string) (*orchestratorv1.DeleteJobResponse, error) {
			id = args[0]
			return c.Orchestrator().DeleteJob(ctx, &orchestratorv1.DeleteJobRequest{Id: id})
		}, func(*orchestratorv1.DeleteJobResponse) error {
			_, err := fmt.Fprintf(a.Stdout, "Job %s deleted.\n", termui.SanitizeLine(id))
			return err
		})
	cmd.Aliases, cmd.ValidArgsFunction = []string{"rm"}, a.completeJobs
	return cmd
}

func ended(j *orchestratorv1.Job) bool {
	switch j.GetStatus() {
	case orchestratorv1.JobStatus_JOB_STATUS_QUEUED, orchestratorv1.JobStatus_JOB_STATUS_RUNNING:
		return false
	}
	return true
}

// waitJob follows a job until it ends and returns its last state (nil when the watch fails).
func (a *App) waitJob(ctx context.Context, c *genailab.Client, id string, limit time.Duration) *orchestratorv1.Job {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	stream, err := c.Orchestrator().WatchJob(ctx, &orchestratorv1.WatchJobRequest{Id: id})
	if err != nil {
		return nil
	}
	var last *orchestratorv1.Job
	for {
		m, err := stream.Recv()
		if err != nil {
			return last
		}
		last = m.GetJob()
		if ended(last) {
			if last.GetResult() != nil {
				last.Result.Png = nil
			}
			return last
		}
	}
}

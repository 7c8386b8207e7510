package e2e

// Issue 19: the jobs a dead orchestrator accepted and never started are run by the one that
// takes over (a new leader on etcd, or the same one restarted on its bbolt file); a follower
// follows the leader's events and jobs live.

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
)

// submitBehindARunningJob submits a long job and, once it is generating (its first step
// seen by WatchJob), n short ones queued behind it; it returns the ids.
func submitBehindARunningJob(t *testing.T, c orchestratorv1.OrchestratorServiceClient, n int) (running string, queued []string) {
	t.Helper()
	r, err := c.SubmitJob(context.Background(), &orchestratorv1.SubmitJobRequest{Params: image(longSteps)})
	if err != nil {
		t.Fatal(err)
	}
	running = r.Job.Id
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	w, err := c.WatchJob(ctx, &orchestratorv1.WatchJobRequest{Id: running})
	if err != nil {
		t.Fatal(err)
	}
	for {
		m, err := w.Recv()
		if err != nil {
			t.Fatalf("the long job never generated: %v", err)
		}
		if m.Job.GetProgress().GetStep() >= 1 {
			break
		}
	}
	for range n {
		q, err := c.SubmitJob(context.Background(), &orchestratorv1.SubmitJobRequest{Params: image(2)})
		if err != nil {
			t.Fatal(err)
		}
		queued = append(queued, q.Job.Id)
	}
	return running, queued
}

// waitEnded waits until job id has ended on c and returns it.
func waitEnded(t *testing.T, c orchestratorv1.OrchestratorServiceClient, id string, d time.Duration) *orchestratorv1.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	w, err := c.WatchJob(ctx, &orchestratorv1.WatchJobRequest{Id: id})
	if err != nil {
		t.Fatal(err)
	}
	for {
		m, err := w.Recv()
		if err != nil {
			t.Fatalf("job %s did not end: %v", id, err)
		}
		switch m.Job.GetStatus() {
		case orchestratorv1.JobStatus_JOB_STATUS_QUEUED, orchestratorv1.JobStatus_JOB_STATUS_RUNNING:
			continue
		}
		return m.Job
	}
}

// requireRequeuedAndRun checks what the orchestrator that took over did with the dead one's
// jobs: each queued id SUCCEEDED with its image, exactly one PNG for it across the galleries;
// the running one FAILED with the reason.
func requireRequeuedAndRun(t *testing.T, c orchestratorv1.OrchestratorServiceClient, running string, queued []string, galleries ...string) {
	t.Helper()
	for _, id := range queued {
		j := waitEnded(t, c, id, 3*time.Minute)
		if j.Status != orchestratorv1.JobStatus_JOB_STATUS_SUCCEEDED {
			t.Fatalf("queued job %s after the takeover: %s %q", id, j.Status, j.Error)
		}
		g, err := c.GetJob(context.Background(), &orchestratorv1.GetJobRequest{Id: id, IncludeImage: true})
		if err != nil || len(g.Job.GetResult().GetPng()) == 0 {
			t.Fatalf("the image of job %s: %v", id, err)
		}
		n := 0
		for _, dir := range galleries {
			ents, err := os.ReadDir(dir)
			if err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			for _, e := range ents {
				if strings.HasPrefix(e.Name(), id) && strings.HasSuffix(e.Name(), ".png") {
					n++
				}
			}
		}
		if n != 1 {
			t.Fatalf("job %s has %d images in the galleries", id, n)
		}
	}
	j := waitEnded(t, c, running, time.Minute)
	if j.Status != orchestratorv1.JobStatus_JOB_STATUS_FAILED || !strings.Contains(j.Error, "not run again") {
		t.Fatalf("the running job after the takeover: %s %q", j.Status, j.Error)
	}
	t.Logf("the running job: %s", j.Error)
}

// The leader is killed (SIGKILL) with a job running and three queued behind it: the new
// leader runs the three (each SUCCEEDED, one image each), and the running one is FAILED with
// its reason. Before the kill, the follower's WatchEvents (follow) got the leader's events
// live, and its WatchJob the running job's start; after, the same streams go on.
func TestReplicaFailoverRunsTheQueuedJobsAndFailsTheRunningOne(t *testing.T) {
	s, _, a, b := replicaStack(t)
	followed := watchEvents(t, b.orch) // on the follower
	running, queued := submitBehindARunningJob(t, a.orch, 3)
	// The leader's events, live on the follower.
	followed.wait(t, evStarted, running, 30*time.Second)
	for _, id := range queued {
		followed.wait(t, evQueued, id, 30*time.Second)
	}
	// The follower's WatchJob follows the job the leader runs (it used to answer once).
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	w, err := b.orch.WatchJob(ctx, &orchestratorv1.WatchJobRequest{Id: running})
	if err != nil {
		t.Fatal(err)
	}
	// (Its record says running once its start is stored, which is written behind it.)
	for {
		m, err := w.Recv()
		if err != nil || m.Job.Status != orchestratorv1.JobStatus_JOB_STATUS_QUEUED && m.Job.Status != orchestratorv1.JobStatus_JOB_STATUS_RUNNING {
			t.Fatalf("the follower's WatchJob of the running job: %v %v", m.GetJob(), err)
		}
		if m.Job.Status == orchestratorv1.JobStatus_JOB_STATUS_RUNNING {
			break
		}
	}
	a.p.kill()
	b.waitLeading(t, 30*time.Second)
	requireRequeuedAndRun(t, b.orch, running, queued,
		filepath.Join(s.dir, "orchestrator-a", "orchestrator", "images"), filepath.Join(s.dir, "orchestrator-b", "orchestrator", "images"))
	for {
		m, err := w.Recv()
		if err != nil {
			t.Fatalf("the follower's WatchJob across the takeover: %v", err)
		}
		if m.Job.Status == orchestratorv1.JobStatus_JOB_STATUS_FAILED {
			break
		}
	}
	// Each re-queued job says so, in the stream the follower opened before it led.
	for _, id := range queued {
		followed.wait(t, evFinished, id, 30*time.Second)
		restored := false
		for _, ev := range followed.all(id) {
			restored = restored || ev.Type == evQueued && ev.Values["restored"] == 1
		}
		if !restored {
			t.Fatalf("job %s: no re-queue event in %v", id, followed.types(id))
		}
	}
	s.waitLLMRunning(reloadWithin)
}

// The same on one orchestrator with its bbolt file: SIGKILLed with a job running and two
// queued, restarted on the same data directory, it runs the two and fails the running one.
func TestRestartRunsTheQueuedJobsAndFailsTheRunningOne(t *testing.T) {
	s := newStack(t, stackOptions{Budget: 1})
	running, queued := submitBehindARunningJob(t, s.orch, 2)
	s.procs["orchestrator"].kill()
	s.startOrchestrator()
	requireRequeuedAndRun(t, s.orch, running, queued, filepath.Join(s.dir, "data", "orchestrator", "images"))
	s.waitLLMRunning(reloadWithin)
}

package e2e

// Writes sent to a follower replica, made by the leader on the real engines (issue 19):
// followers forward every call they do not answer from the store to the leader.

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/pkg/testenv"
)

var pngMagic = []byte("\x89PNG\r\n\x1a\n")

// A GenerateImage stream sent to a follower delivers the leader's job id, progress and
// image; the job is in the leader's gallery.
func TestGenerateImageThroughAFollower(t *testing.T) {
	_, _, a, b := replicaStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	stream, err := b.orch.GenerateImage(ctx, &orchestratorv1.GenerateImageRequest{Params: image(4)})
	if err != nil {
		t.Fatal(err)
	}
	var id string
	var steps int
	var png []byte
	for png == nil {
		m, err := stream.Recv()
		if err != nil {
			t.Fatalf("GenerateImage through a follower (job %q, %d progress messages): %v", id, steps, err)
		}
		switch {
		case m.GetJobId() != "":
			id = m.GetJobId()
		case m.GetProgress() != nil:
			steps++
		case m.GetResult() != nil:
			png = m.GetResult().GetPng()
		}
	}
	if id == "" || steps == 0 || !bytes.HasPrefix(png, pngMagic) {
		t.Fatalf("through a follower: job %q, %d progress messages, %d bytes of image", id, steps, len(png))
	}
	j, err := a.orch.GetJob(ctx, &orchestratorv1.GetJobRequest{Id: id, IncludeImage: true})
	if err != nil || j.Job.Status != orchestratorv1.JobStatus_JOB_STATUS_SUCCEEDED || !bytes.Equal(j.Job.GetResult().GetPng(), png) {
		t.Fatalf("the leader's record of the job: %v %v", j.GetJob().GetStatus(), err)
	}
	t.Logf("job %s through the follower: %d progress messages, %d bytes of PNG", id, steps, len(png))
}

// A SubmitJob sent to a follower returns a job that the leader runs; the follower follows
// it from the store to its end; the leader's NotFound for an unknown job comes back as is.
func TestSubmitJobThroughAFollowerRunsOnTheLeader(t *testing.T) {
	_, _, a, b := replicaStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r, err := b.orch.SubmitJob(ctx, &orchestratorv1.SubmitJobRequest{Params: image(2)})
	if err != nil {
		t.Fatalf("SubmitJob through a follower: %v", err)
	}
	w, err := b.orch.WatchJob(ctx, &orchestratorv1.WatchJobRequest{Id: r.Job.Id})
	if err != nil {
		t.Fatal(err)
	}
	var last *orchestratorv1.Job
	for {
		m, err := w.Recv()
		if err != nil {
			break
		}
		last = m.GetJob()
	}
	if last.GetStatus() != orchestratorv1.JobStatus_JOB_STATUS_SUCCEEDED {
		t.Fatalf("the job submitted through the follower: %v", last)
	}
	j, err := a.orch.GetJob(ctx, &orchestratorv1.GetJobRequest{Id: r.Job.Id, IncludeImage: true})
	if err != nil || !bytes.HasPrefix(j.GetJob().GetResult().GetPng(), pngMagic) {
		t.Fatalf("the leader's image of the job: %v", err)
	}
	_, direct := a.orch.DeleteJob(ctx, &orchestratorv1.DeleteJobRequest{Id: "no-such-job"})
	_, via := b.orch.DeleteJob(ctx, &orchestratorv1.DeleteJobRequest{Id: "no-such-job"})
	if status.Code(direct) != codes.NotFound || status.Convert(via).Message() != status.Convert(direct).Message() || status.Code(via) != codes.NotFound {
		t.Fatalf("DeleteJob of an unknown job: leader %v, through the follower %v", direct, via)
	}
}

// The gallery's PNGs stay on the replica that made them: a GetJob with include_image on
// another replica is forwarded to the one the job record names; once that replica is gone,
// the answer is Unavailable, naming it.
func TestImageOfAnotherReplicasGallery(t *testing.T) {
	_, _, a, b := replicaStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r, err := a.orch.SubmitJob(ctx, &orchestratorv1.SubmitJobRequest{Params: image(2)})
	if err != nil {
		t.Fatal(err)
	}
	w, err := a.orch.WatchJob(ctx, &orchestratorv1.WatchJobRequest{Id: r.Job.Id})
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := w.Recv(); err != nil {
			break
		}
	}
	j, err := b.orch.GetJob(ctx, &orchestratorv1.GetJobRequest{Id: r.Job.Id})
	if err != nil || j.Job.Status != orchestratorv1.JobStatus_JOB_STATUS_SUCCEEDED || j.Job.Replica != a.addr {
		t.Fatalf("the job as the follower reads it: status %v, replica %q (want %s): %v", j.GetJob().GetStatus(), j.GetJob().GetReplica(), a.addr, err)
	}
	want, err := a.orch.GetJob(ctx, &orchestratorv1.GetJobRequest{Id: r.Job.Id, IncludeImage: true})
	if err != nil || !bytes.HasPrefix(want.Job.GetResult().GetPng(), pngMagic) {
		t.Fatalf("the image on its replica: %v", err)
	}
	got, err := b.orch.GetJob(ctx, &orchestratorv1.GetJobRequest{Id: r.Job.Id, IncludeImage: true})
	if err != nil || !bytes.Equal(got.Job.GetResult().GetPng(), want.Job.GetResult().GetPng()) {
		t.Fatalf("the image through the other replica: %d bytes, %v", len(got.GetJob().GetResult().GetPng()), err)
	}
	// WatchJob on the other replica ends, as everywhere, with the image.
	if last, err := watchToEnd(ctx, b.orch, r.Job.Id); err != nil || !bytes.Equal(last.GetResult().GetPng(), want.Job.GetResult().GetPng()) {
		t.Fatalf("WatchJob through the other replica: status %v, %d bytes of image, %v", last.GetStatus(), len(last.GetResult().GetPng()), err)
	}

	a.p.kill()
	b.waitLeading(t, 30*time.Second)
	_, err = b.orch.GetJob(ctx, &orchestratorv1.GetJobRequest{Id: r.Job.Id, IncludeImage: true})
	if st := status.Convert(err); st.Code() != codes.Unavailable || !strings.Contains(st.Message(), a.addr) {
		t.Fatalf("the image of a replica that is gone: %v", err)
	}
	if j, err := b.orch.GetJob(ctx, &orchestratorv1.GetJobRequest{Id: r.Job.Id}); err != nil || j.Job.Status != orchestratorv1.JobStatus_JOB_STATUS_SUCCEEDED {
		t.Fatalf("the record without the image: %v %v", j.GetJob(), err)
	}
	// WatchJob says the job's end, then why its image is not there.
	last, werr := watchToEnd(ctx, b.orch, r.Job.Id)
	if st := status.Convert(werr); last.GetStatus() != orchestratorv1.JobStatus_JOB_STATUS_SUCCEEDED || st.Code() != codes.Unavailable || !strings.Contains(st.Message(), a.addr) {
		t.Fatalf("WatchJob of an image on a replica that is gone: last status %v, then %v", last.GetStatus(), werr)
	}
	t.Logf("image of %d bytes fetched from %s through %s; after its kill: %v", len(got.Job.GetResult().GetPng()), a.addr, b.addr, err)
}

// watchToEnd follows a job with WatchJob and returns its last message's job and the
// stream's error (nil when it ended cleanly).
func watchToEnd(ctx context.Context, c orchestratorv1.OrchestratorServiceClient, id string) (*orchestratorv1.Job, error) {
	w, err := c.WatchJob(ctx, &orchestratorv1.WatchJobRequest{Id: id})
	if err != nil {
		return nil, err
	}
	var last *orchestratorv1.Job
	for {
		m, err := w.Recv()
		if err == io.EOF {
			return last, nil
		}
		if err != nil {
			return last, err
		}
		last = m.GetJob()
	}
}

// BenchmarkForwardedOverDirect compares one 256×256 image (4 steps, real sd-cli, tiny
// model) through a follower, which forwards the stream to the leader, with the same image
// sent to the leader itself, alternating the two, and reports forwarded ÷ direct.
func BenchmarkForwardedOverDirect(b *testing.B) {
	etcd := testenv.StartEtcd(b, 3)
	s := newStack(b, stackOptions{})
	s.procs["orchestrator"].stop()
	leader := s.startReplica("orchestrator-a", etcd.Endpoints())
	leader.waitLeading(b, 30*time.Second)
	follower := s.startReplica("orchestrator-b", etcd.Endpoints())
	requireForwardedByFollower(b, follower, leader.addr)
	benchImagePair(b, leader.orch, follower.orch, "direct", "forwarded")
}

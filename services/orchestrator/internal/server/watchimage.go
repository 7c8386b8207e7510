package server

import (
	"errors"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
)

// errImageNotHere is the local answer of a WatchJob whose job succeeded on another
// replica: its record is in the shared store, its PNG in that replica's gallery.
var errImageNotHere = errors.New("the job's image is not in this replica's gallery")

// imageStream completes the last message of a WatchJob answered on this replica: a job
// that succeeded with its images in another replica's gallery (a job the leader ran,
// watched on a follower, or one made by an earlier leader) ends, as WatchJob promises,
// with its image, fetched from the replica that holds it as GetJob does (replica.image).
// When that replica does not answer, the record is sent without the image and the
// stream ends with image's error (Unavailable, naming it): the client knows the job's
// end, and why its image is not there.
type imageStream struct {
	grpc.ServerStream
	r *replica
}

// SendMsg implements grpc.ServerStream.
func (s imageStream) SendMsg(m any) error {
	resp, ok := m.(*orchestratorv1.WatchJobResponse)
	j := resp.GetJob()
	if !ok || j.GetStatus() != orchestratorv1.JobStatus_JOB_STATUS_SUCCEEDED || j.GetResult() == nil || len(j.GetResult().GetPng()) > 0 {
		return s.ServerStream.SendMsg(m)
	}
	req := &orchestratorv1.GetJobRequest{Id: j.GetId(), IncludeImage: true}
	got, err := s.r.image(s.Context(), orchestratorv1.OrchestratorService_GetJob_FullMethodName, req, errImageNotHere)
	if err != nil {
		if serr := s.ServerStream.SendMsg(m); serr != nil {
			return serr
		}
		return err
	}
	full := proto.CloneOf(resp)
	full.Job.Result = got.(*orchestratorv1.GetJobResponse).GetJob().GetResult()
	return s.ServerStream.SendMsg(full)
}

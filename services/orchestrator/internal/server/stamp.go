package server

import (
	"google.golang.org/protobuf/proto"

	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
)

// AppendEventsWithJobs stores evs with the job records jobs in one transaction, each
// record stamped as PutJob stamps it: the jobs manager stores a job's end this way (with
// its last event), and that end is the record that carries the result.
func (g galleryStamp) AppendEventsWithJobs(evs []*orchestratorv1.Event, jobs []*orchestratorv1.Job) error {
	stamped := make([]*orchestratorv1.Job, len(jobs))
	for i, j := range jobs {
		if j.GetResult() != nil && j.GetReplica() == "" {
			j = proto.CloneOf(j)
			j.Replica = g.self()
		}
		stamped[i] = j
	}
	return g.Etcd.AppendEventsWithJobs(evs, stamped)
}

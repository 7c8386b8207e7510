package state

import (
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"

	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
)

const (
	kindJob = "job"
	// jobBatch is how many job records one read of a listing fetches.
	jobBatch = 200
)

// Job ids sort by creation time (see the jobs package), so the key order under jobs/ is
// the submission order, as in the bbolt bucket.

func (e *Etcd) jobKey(id string) string { return e.key("jobs/", id) }

// PutJob stores (replacing) a job record, never its PNG bytes.
func (e *Etcd) PutJob(j *orchestratorv1.Job) error {
	op, err := e.putJobOp(j)
	if err != nil {
		return err
	}
	if _, _, err := e.txn(nil, []clientv3.Op{op}); err != nil {
		return fmt.Errorf("store job %s: %w", j.GetId(), err)
	}
	return nil
}

// putJobOp is the put of a job record, without its PNG bytes.
func (e *Etcd) putJobOp(j *orchestratorv1.Job) (clientv3.Op, error) {
	if j.GetResult().GetPng() != nil {
		j = proto.Clone(j).(*orchestratorv1.Job)
		j.Result.Png = nil
	}
	v, err := encodeProto(kindJob, j)
	if err != nil {
		return clientv3.Op{}, err
	}
	return clientv3.OpPut(e.jobKey(j.GetId()), v), nil
}

// Job returns a stored job, or ErrNotFound.
func (e *Etcd) Job(id string) (*orchestratorv1.Job, error) {
	resp, err := e.get(e.jobKey(id))
	if err != nil {
		return nil, fmt.Errorf("read job %s: %w", id, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, fmt.Errorf("job %s: %w", id, ErrNotFound)
	}
	j := &orchestratorv1.Job{}
	if err := decodeProto(kindJob, resp.Kvs[0].Value, j); err != nil {
		e.badRecord(string(resp.Kvs[0].Key), err)
		return nil, fmt.Errorf("read job %s: %w", id, err)
	}
	return j, nil
}

// DeleteJob removes a job record; removing a missing one is ErrNotFound.
func (e *Etcd) DeleteJob(id string) error {
	k := e.jobKey(id)
	_, ok, err := e.txn([]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(k), ">", 0)}, []clientv3.Op{clientv3.OpDelete(k)})
	if err != nil {
		return fmt.Errorf("delete job: %w", err)
	}
	if !ok {
		return fmt.Errorf("delete job: job %s: %w", id, ErrNotFound)
	}
	return nil
}

// ListJobs returns up to limit jobs, newest first, starting after the job with id
// `before` (empty starts at the newest), keeping only those keep accepts (nil keeps all);
// next is the `before` of the following page, empty at the end. Every batch is read at
// the first one's revision: one consistent snapshot.
func (e *Etcd) ListJobs(before string, limit int, keep func(*orchestratorv1.Job) bool) (jobs []*orchestratorv1.Job, next string, err error) {
	lo := e.jobKey("")
	hi := clientv3.GetPrefixRangeEnd(lo)
	if before != "" {
		hi = e.jobKey(before)
	}
	var rev int64
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(hi), clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(jobBatch)}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := e.get(lo, opts...)
		if err != nil {
			return nil, "", fmt.Errorf("list jobs: %w", err)
		}
		rev = resp.Header.GetRevision()
		for _, kv := range resp.Kvs {
			if len(jobs) == limit {
				return jobs, jobs[len(jobs)-1].GetId(), nil
			}
			hi = string(kv.Key)
			j := &orchestratorv1.Job{}
			if err := decodeProto(kindJob, kv.Value, j); err != nil {
				e.badRecord(string(kv.Key), err)
				continue
			}
			if keep == nil || keep(j) {
				jobs = append(jobs, j)
			}
		}
		if !resp.More {
			return jobs, "", nil
		}
	}
}

// AllJobs calls fn for every stored job, oldest first (one snapshot), skipping (and
// counting) the records that do not decode.
func (e *Etcd) AllJobs(fn func(*orchestratorv1.Job) error) error {
	from := e.jobKey("")
	end := clientv3.GetPrefixRangeEnd(from)
	var rev int64
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend), clientv3.WithLimit(jobBatch)}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := e.get(from, opts...)
		if err != nil {
			return fmt.Errorf("read jobs: %w", err)
		}
		rev = resp.Header.GetRevision()
		for _, kv := range resp.Kvs {
			from = string(kv.Key) + "\x00"
			j := &orchestratorv1.Job{}
			if err := decodeProto(kindJob, kv.Value, j); err != nil {
				e.badRecord(string(kv.Key), err)
				continue
			}
			if err := fn(j); err != nil {
				return err
			}
		}
		if !resp.More {
			return nil
		}
	}
}

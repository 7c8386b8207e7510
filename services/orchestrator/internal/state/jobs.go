package state

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
)

// Job ids sort by creation time (see the jobs package), so the bucket's key order is
// the submission order and listing newest first is a reverse cursor walk.

// PutJob stores (replacing) a job record. The record never carries the PNG bytes: images
// live in files next to the database.
func (d *boltDB) PutJob(j *orchestratorv1.Job) error {
	data, err := encodeJob(j)
	if err != nil {
		return err
	}
	if err := d.update(func(tx *bolt.Tx) error { return tx.Bucket(bucketJobs).Put([]byte(j.GetId()), data) }); err != nil {
		return fmt.Errorf("store job %s: %w", j.GetId(), err)
	}
	return nil
}

// encodeJob is the stored form of a job record: without its PNG bytes.
func encodeJob(j *orchestratorv1.Job) ([]byte, error) {
	if j.GetResult().GetPng() != nil {
		j = proto.Clone(j).(*orchestratorv1.Job)
		j.Result.Png = nil
	}
	data, err := proto.Marshal(j)
	if err != nil {
		return nil, fmt.Errorf("encode job %s: %w", j.GetId(), err)
	}
	return data, nil
}

// Job returns a stored job, or ErrNotFound.
func (d *boltDB) Job(id string) (*orchestratorv1.Job, error) {
	var out *orchestratorv1.Job
	err := d.view(func(tx *bolt.Tx) error {
		data := tx.Bucket(bucketJobs).Get([]byte(id))
		if data == nil {
			return nil
		}
		out = &orchestratorv1.Job{}
		if err := proto.Unmarshal(data, out); err != nil {
			d.badRecord(bucketJobs, id, err)
			return fmt.Errorf("%w: job %s: %v", ErrCorruptRecord, id, err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read job %s: %w", id, err)
	}
	if out == nil {
		return nil, fmt.Errorf("job %s: %w", id, ErrNotFound)
	}
	return out, nil
}

// DeleteJob removes a job record; removing a missing one is ErrNotFound.
func (d *boltDB) DeleteJob(id string) error {
	err := d.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketJobs)
		if b.Get([]byte(id)) == nil {
			return fmt.Errorf("job %s: %w", id, ErrNotFound)
		}
		return b.Delete([]byte(id))
	})
	if err != nil {
		return fmt.Errorf("delete job: %w", err)
	}
	return nil
}

// ListJobs returns up to limit jobs, newest first, starting after the job with id
// `before` (empty starts at the newest), keeping only those keep accepts (nil keeps all).
// next is the id to pass as `before` for the following page, empty at the end.
func (d *boltDB) ListJobs(before string, limit int, keep func(*orchestratorv1.Job) bool) (jobs []*orchestratorv1.Job, next string, err error) {
	err = d.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketJobs).Cursor()
		var k, v []byte
		if before == "" {
			k, v = c.Last()
		} else {
			k, v = c.Seek([]byte(before))
			if k == nil {
				k, v = c.Last()
			}
			// Seek lands on `before` itself or the first key after it: step back past it.
			for k != nil && string(k) >= before {
				k, v = c.Prev()
			}
		}
		for ; k != nil; k, v = c.Prev() {
			if len(jobs) == limit {
				next = jobs[len(jobs)-1].GetId()
				return nil
			}
			j := &orchestratorv1.Job{}
			if err := proto.Unmarshal(v, j); err != nil {
				d.badRecord(bucketJobs, string(k), err)
				continue // skipped, counted: one bad record never fails a listing
			}
			if keep == nil || keep(j) {
				jobs = append(jobs, j)
			}
		}
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("list jobs: %w", err)
	}
	return jobs, next, nil
}

// AllJobs calls fn for every stored job, oldest first, skipping (and counting) the records
// that do not decode.
func (d *boltDB) AllJobs(fn func(*orchestratorv1.Job) error) error {
	return d.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketJobs).ForEach(func(k, v []byte) error {
			j := &orchestratorv1.Job{}
			if err := proto.Unmarshal(v, j); err != nil {
				d.badRecord(bucketJobs, string(k), err)
				return nil
			}
			return fn(j)
		})
	})
}

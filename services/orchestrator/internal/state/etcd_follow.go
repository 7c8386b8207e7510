package state

import (
	"context"
	"errors"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
)

// The feed of the etcd store (Feed): a read at one revision, then a watch from the next,
// so that nothing written between the two is missed or sent twice. Watches require a
// leader (clientv3.WithRequireLeader): a member cut off from its cluster's quorum ends
// the watch with an error instead of going silent.

var _ Feed = (*Etcd)(nil)

// errWatchEnded is the error of a watch that ended while its caller still wanted it (the
// client closed).
var errWatchEnded = errors.New("the etcd watch ended")

// FollowEvents calls fn with every event above after, stored now or later, in id order.
func (e *Etcd) FollowEvents(ctx context.Context, after uint64, fn func(*orchestratorv1.Event) error) error {
	ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	end := clientv3.GetPrefixRangeEnd(e.key("events/"))
	var rev int64
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend), clientv3.WithLimit(jobBatch)}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := e.get(e.eventKey(after+1), opts...)
		if err != nil {
			return fmt.Errorf("follow events: %w", err)
		}
		rev = resp.Header.GetRevision()
		for _, ev := range e.decodeEvents(resp) {
			if ev.GetId() <= after {
				continue
			}
			if err := fn(ev); err != nil {
				return err
			}
			after = ev.GetId()
		}
		if !resp.More {
			break
		}
	}
	for wr := range e.cli.Watch(ctx, e.key("events/"), clientv3.WithPrefix(), clientv3.WithRev(rev+1)) {
		if err := wr.Err(); err != nil {
			return fmt.Errorf("follow events: %w", err)
		}
		for _, we := range wr.Events {
			if we.Type != clientv3.EventTypePut { // the trimming of the oldest
				continue
			}
			ev := &orchestratorv1.Event{}
			if err := decodeProto(kindEvent, we.Kv.Value, ev); err != nil {
				e.badRecord(string(we.Kv.Key), err)
				continue
			}
			if ev.GetId() <= after {
				continue
			}
			if err := fn(ev); err != nil {
				return err
			}
			after = ev.GetId()
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return fmt.Errorf("follow events: %w", errWatchEnded)
}

// FollowJob calls fn with the job's record, then with each later version, until fn is done.
func (e *Etcd) FollowJob(ctx context.Context, id string, fn func(*orchestratorv1.Job) (bool, error)) error {
	ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	k := e.jobKey(id)
	resp, err := e.get(k)
	if err != nil {
		return fmt.Errorf("follow job %s: %w", id, err)
	}
	if len(resp.Kvs) == 0 {
		return fmt.Errorf("job %s: %w", id, ErrNotFound)
	}
	deliver := func(value []byte) (bool, error) {
		j := &orchestratorv1.Job{}
		if err := decodeProto(kindJob, value, j); err != nil {
			e.badRecord(k, err)
			return false, fmt.Errorf("follow job %s: %w", id, err)
		}
		return fn(j)
	}
	if done, err := deliver(resp.Kvs[0].Value); done || err != nil {
		return err
	}
	for wr := range e.cli.Watch(ctx, k, clientv3.WithRev(resp.Header.GetRevision()+1)) {
		if err := wr.Err(); err != nil {
			return fmt.Errorf("follow job %s: %w", id, err)
		}
		for _, we := range wr.Events {
			if we.Type == clientv3.EventTypeDelete {
				return fmt.Errorf("job %s (deleted): %w", id, ErrNotFound)
			}
			if done, err := deliver(we.Kv.Value); done || err != nil {
				return err
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return fmt.Errorf("follow job %s: %w", id, errWatchEnded)
}

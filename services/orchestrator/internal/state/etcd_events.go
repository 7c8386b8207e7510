package state

import (
	"fmt"
	"strconv"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
)

const kindEvent = "event"

// eventKey holds the id in 20 digits: the key order is the id order.
func (e *Etcd) eventKey(id uint64) string { return e.key("events/", fmt.Sprintf("%020d", id)) }

// AppendEvent stores ev with the next id (set on ev) and deletes the oldest events beyond
// the configured bound, in one transaction.
func (e *Etcd) AppendEvent(ev *orchestratorv1.Event) error {
	return e.AppendEvents([]*orchestratorv1.Event{ev})
}

// AppendEvents stores evs, each with the next id, and trims the log, in one transaction.
// Appends are serialised in this process; only one process writes (the leader: the store
// is fenced), which reads the last id after every change of the fence.
func (e *Etcd) AppendEvents(evs []*orchestratorv1.Event) error {
	if err := e.appendEvents(evs, nil); err != nil {
		return fmt.Errorf("store event: %w", err)
	}
	return nil
}

// AppendEventsWithJobs stores evs as AppendEvents does and the job records jobs as PutJob
// does, in one transaction (one raft round).
func (e *Etcd) AppendEventsWithJobs(evs []*orchestratorv1.Event, jobs []*orchestratorv1.Job) error {
	ops := make([]clientv3.Op, len(jobs))
	for i, j := range jobs {
		op, err := e.putJobOp(j)
		if err != nil {
			return err
		}
		ops[i] = op
	}
	if err := e.appendEvents(evs, ops); err != nil {
		return fmt.Errorf("store %d event(s) with %d job record(s): %w", len(evs), len(jobs), err)
	}
	return nil
}

// appendEvents writes evs (numbered, the log trimmed) and the other operations also in
// one transaction.
func (e *Etcd) appendEvents(evs []*orchestratorv1.Event, also []clientv3.Op) error {
	if len(evs) == 0 {
		if len(also) == 0 {
			return nil
		}
		_, _, err := e.txn(nil, also)
		return err
	}
	e.evMu.Lock()
	defer e.evMu.Unlock()
	if e.nextEvent == 0 {
		last, err := e.lastEventID()
		if err != nil {
			return err
		}
		e.nextEvent = last + 1
	}
	id := e.nextEvent
	ops := make([]clientv3.Op, 0, len(evs)+1+len(also))
	for i, ev := range evs {
		ev.Id = id + uint64(i)
		v, err := encodeProto(kindEvent, ev)
		if err != nil {
			return err
		}
		ops = append(ops, clientv3.OpPut(e.eventKey(ev.Id), v))
	}
	last := id + uint64(len(evs)) - 1
	if last > uint64(e.maxEvents) {
		oldestKept := last - uint64(e.maxEvents) + 1
		ops = append(ops, clientv3.OpDelete(e.eventKey(0), clientv3.WithRange(e.eventKey(oldestKept))))
	}
	ops = append(ops, also...)
	if _, _, err := e.txn(nil, ops); err != nil {
		e.nextEvent = 0 // unknown whether it was applied: read it again
		return err
	}
	e.nextEvent = last + 1
	return nil
}

func (e *Etcd) lastEventID() (uint64, error) {
	resp, err := e.get(e.eventKey(0), clientv3.WithRange(clientv3.GetPrefixRangeEnd(e.key("events/"))),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(1), clientv3.WithKeysOnly())
	if err != nil {
		return 0, err
	}
	if len(resp.Kvs) == 0 {
		return 0, nil
	}
	return strconv.ParseUint(strings.TrimPrefix(string(resp.Kvs[0].Key), e.key("events/")), 10, 64)
}

// EventsAfter returns up to limit stored events with an id above sinceID, oldest first.
func (e *Etcd) EventsAfter(sinceID uint64, limit int) ([]*orchestratorv1.Event, error) {
	if limit <= 0 {
		return nil, nil
	}
	resp, err := e.get(e.eventKey(sinceID+1), clientv3.WithRange(clientv3.GetPrefixRangeEnd(e.key("events/"))),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend), clientv3.WithLimit(int64(limit)))
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	return e.decodeEvents(resp), nil
}

// LastEvents returns the last n stored events, oldest first.
func (e *Etcd) LastEvents(n int) ([]*orchestratorv1.Event, error) {
	if n <= 0 {
		return nil, nil
	}
	resp, err := e.get(e.eventKey(0), clientv3.WithRange(clientv3.GetPrefixRangeEnd(e.key("events/"))),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(int64(n)))
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	out := e.decodeEvents(resp)
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

func (e *Etcd) decodeEvents(resp *clientv3.GetResponse) []*orchestratorv1.Event {
	var out []*orchestratorv1.Event
	for _, kv := range resp.Kvs {
		ev := &orchestratorv1.Event{}
		if err := decodeProto(kindEvent, kv.Value, ev); err != nil {
			e.badRecord(string(kv.Key), err)
			continue // skipped, counted: one bad record never fails a listing
		}
		out = append(out, ev)
	}
	return out
}

package state

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
)

func eventKey(id uint64) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, id)
	return k
}

// AppendEvent stores ev with the next id (set on ev) and deletes the oldest events beyond
// the configured bound.
func (d *boltDB) AppendEvent(ev *orchestratorv1.Event) error {
	return d.AppendEvents([]*orchestratorv1.Event{ev})
}

// AppendEvents stores evs in one transaction, each with the next id (set on it).
func (d *boltDB) AppendEvents(evs []*orchestratorv1.Event) error {
	if err := d.update(func(tx *bolt.Tx) error { return d.appendEventsTx(tx, evs) }); err != nil {
		return fmt.Errorf("store event: %w", err)
	}
	return nil
}

// appendEventsTx appends evs in tx, each with the next id (set on it).
func (d *boltDB) appendEventsTx(tx *bolt.Tx, evs []*orchestratorv1.Event) error {
	for _, ev := range evs {
		if err := d.appendEvent(tx.Bucket(bucketEvents), ev); err != nil {
			return err
		}
	}
	return nil
}

// AppendEventsWithJobs stores evs as AppendEvents does and the job records jobs as PutJob
// does, in one transaction (one commit).
func (d *boltDB) AppendEventsWithJobs(evs []*orchestratorv1.Event, jobs []*orchestratorv1.Job) error {
	recs := make([][]byte, len(jobs))
	for i, j := range jobs {
		data, err := encodeJob(j)
		if err != nil {
			return err
		}
		recs[i] = data
	}
	err := d.update(func(tx *bolt.Tx) error {
		if err := d.appendEventsTx(tx, evs); err != nil {
			return err
		}
		for i, j := range jobs {
			if err := tx.Bucket(bucketJobs).Put([]byte(j.GetId()), recs[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store %d event(s) with %d job record(s): %w", len(evs), len(jobs), err)
	}
	return nil
}

func (d *boltDB) appendEvent(b *bolt.Bucket, ev *orchestratorv1.Event) error {
	id, err := b.NextSequence()
	if err != nil {
		return err
	}
	ev.Id = id
	data, err := proto.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	if err := b.Put(eventKey(id), data); err != nil {
		return err
	}
	if id <= uint64(d.maxEvents) {
		return nil
	}
	// Keys are ordered ids: delete from the first while it is older than the bound.
	oldestKept := id - uint64(d.maxEvents) + 1
	c := b.Cursor()
	for k, _ := c.First(); k != nil && binary.BigEndian.Uint64(k) < oldestKept; k, _ = c.Next() {
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return nil
}

// EventsAfter returns up to limit stored events with an id above sinceID, oldest first.
func (d *boltDB) EventsAfter(sinceID uint64, limit int) ([]*orchestratorv1.Event, error) {
	var out []*orchestratorv1.Event
	err := d.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketEvents).Cursor()
		for k, v := c.Seek(eventKey(sinceID + 1)); k != nil && len(out) < limit; k, v = c.Next() {
			ev := &orchestratorv1.Event{}
			if err := proto.Unmarshal(v, ev); err != nil {
				d.badRecord(bucketEvents, fmt.Sprint(binary.BigEndian.Uint64(k)), err)
				continue // skipped, counted: one bad record never fails a listing
			}
			out = append(out, ev)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	return out, nil
}

// LastEvents returns the last n stored events, oldest first.
func (d *boltDB) LastEvents(n int) ([]*orchestratorv1.Event, error) {
	var out []*orchestratorv1.Event
	err := d.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketEvents).Cursor()
		for k, v := c.Last(); k != nil && len(out) < n; k, v = c.Prev() {
			ev := &orchestratorv1.Event{}
			if err := proto.Unmarshal(v, ev); err != nil {
				d.badRecord(bucketEvents, fmt.Sprint(binary.BigEndian.Uint64(k)), err)
				continue // skipped, counted: one bad record never fails a listing
			}
			out = append(out, ev)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

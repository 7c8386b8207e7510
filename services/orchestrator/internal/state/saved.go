package state

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
)

// PutSavedState stores (replacing) the saved LLM state of s.Host. It returns only once
// the state is on disk: the orchestrator calls it before stopping the LLM.
func (d *boltDB) PutSavedState(s *orchestratorv1.SavedState) error {
	data, err := proto.Marshal(s)
	if err != nil {
		return fmt.Errorf("encode saved state: %w", err)
	}
	err = d.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSaved).Put(hostKey(s.GetHost()), data)
	})
	if err != nil {
		return fmt.Errorf("store saved state of host %q: %w", s.GetHost(), err)
	}
	return nil
}

// SavedState returns the saved state of host, or nil when there is none.
func (d *boltDB) SavedState(host string) (*orchestratorv1.SavedState, error) {
	var out *orchestratorv1.SavedState
	err := d.view(func(tx *bolt.Tx) error {
		data := tx.Bucket(bucketSaved).Get(hostKey(host))
		if data == nil {
			return nil
		}
		out = &orchestratorv1.SavedState{}
		if err := proto.Unmarshal(data, out); err != nil {
			d.badRecord(bucketSaved, string(hostKey(host)), err)
			return fmt.Errorf("%w: %v", ErrCorruptRecord, err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read saved state of host %q: %w", host, err)
	}
	return out, nil
}

// SavedStates returns every saved state (host "" means all), sorted by host, skipping (and
// counting) the records that do not decode.
func (d *boltDB) SavedStates(host string) ([]*orchestratorv1.SavedState, error) {
	var out []*orchestratorv1.SavedState
	err := d.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSaved).ForEach(func(k, v []byte) error {
			if host != "" && string(k) != string(hostKey(host)) {
				return nil
			}
			s := &orchestratorv1.SavedState{}
			if err := proto.Unmarshal(v, s); err != nil {
				d.badRecord(bucketSaved, string(k), err)
				return nil // skipped, counted
			}
			out = append(out, s)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read saved states: %w", err)
	}
	return out, nil
}

// ClearSavedState removes the saved state of host ("" removes all) and returns how many
// were removed.
func (d *boltDB) ClearSavedState(host string) (int, error) {
	n := 0
	err := d.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSaved)
		if host != "" {
			if b.Get(hostKey(host)) == nil {
				return nil
			}
			n = 1
			return b.Delete(hostKey(host))
		}
		var keys [][]byte
		if err := b.ForEach(func(k, _ []byte) error { keys = append(keys, append([]byte(nil), k...)); return nil }); err != nil {
			return err
		}
		for _, k := range keys {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		n = len(keys)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("clear saved state: %w", err)
	}
	return n, nil
}

// hostKey is the key of a host's saved state ("" is the local host; bbolt keys cannot be empty).
func hostKey(host string) []byte { return []byte("host:" + host) }

// MoveSavedState gives the saved state of host from (if any) to host to, unless to has
// one already: for a host that was renamed (the local host was once named ""). It reports
// whether a state was moved.
func (d *boltDB) MoveSavedState(from, to string) (bool, error) {
	moved := false
	err := d.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSaved)
		data := b.Get(hostKey(from))
		if data == nil || b.Get(hostKey(to)) != nil {
			return nil
		}
		s := &orchestratorv1.SavedState{}
		if err := proto.Unmarshal(data, s); err != nil {
			return fmt.Errorf("%w: %v", ErrCorruptRecord, err)
		}
		s.Host = to
		out, err := proto.Marshal(s)
		if err != nil {
			return err
		}
		if err := b.Put(hostKey(to), out); err != nil {
			return err
		}
		moved = true
		return b.Delete(hostKey(from))
	})
	if err != nil {
		return false, fmt.Errorf("move saved state of host %q to %q: %w", from, to, err)
	}
	return moved, nil
}

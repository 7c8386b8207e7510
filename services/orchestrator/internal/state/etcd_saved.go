package state

import (
	"errors"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
)

const kindSaved = "saved_state"

func (e *Etcd) savedKey(host string) string { return e.key("saved/", host) }

// PutSavedState stores (replacing) the saved LLM state of s.Host; durable (replicated to
// a quorum) when it returns.
func (e *Etcd) PutSavedState(s *orchestratorv1.SavedState) error {
	v, err := encodeProto(kindSaved, s)
	if err != nil {
		return err
	}
	if _, _, err := e.txn(nil, []clientv3.Op{clientv3.OpPut(e.savedKey(s.GetHost()), v)}); err != nil {
		return fmt.Errorf("store saved state of host %q: %w", s.GetHost(), err)
	}
	return nil
}

// SavedState returns the saved state of host, or nil when there is none.
func (e *Etcd) SavedState(host string) (*orchestratorv1.SavedState, error) {
	resp, err := e.get(e.savedKey(host))
	if err != nil {
		return nil, fmt.Errorf("read saved state of host %q: %w", host, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	s := &orchestratorv1.SavedState{}
	if err := decodeProto(kindSaved, resp.Kvs[0].Value, s); err != nil {
		e.badRecord(string(resp.Kvs[0].Key), err)
		return nil, fmt.Errorf("read saved state of host %q: %w", host, err)
	}
	return s, nil
}

// SavedStates returns every saved state (host "" means all), sorted by host, skipping (and
// counting) the records that do not decode.
func (e *Etcd) SavedStates(host string) ([]*orchestratorv1.SavedState, error) {
	if host != "" {
		s, err := e.SavedState(host)
		if err != nil || s == nil {
			if errors.Is(err, ErrCorruptRecord) {
				err = nil
			}
			return nil, err
		}
		return []*orchestratorv1.SavedState{s}, nil
	}
	resp, err := e.get(e.savedKey(""), clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, fmt.Errorf("read saved states: %w", err)
	}
	var out []*orchestratorv1.SavedState
	for _, kv := range resp.Kvs {
		s := &orchestratorv1.SavedState{}
		if err := decodeProto(kindSaved, kv.Value, s); err != nil {
			e.badRecord(string(kv.Key), err)
			continue
		}
		out = append(out, s)
	}
	return out, nil
}

// ClearSavedState removes the saved state of host ("" removes all) and returns how many
// were removed, in one transaction.
func (e *Etcd) ClearSavedState(host string) (int, error) {
	op := clientv3.OpDelete(e.savedKey(host))
	if host == "" {
		op = clientv3.OpDelete(e.savedKey(""), clientv3.WithPrefix())
	}
	resp, _, err := e.txn(nil, []clientv3.Op{op})
	if err != nil {
		return 0, fmt.Errorf("clear saved state: %w", err)
	}
	return int(resp.Responses[0].GetResponseDeleteRange().GetDeleted()), nil
}

// MoveSavedState gives the saved state of host from (if any) to host to, unless to has
// one already, in one transaction that holds only while neither changed since it was read.
func (e *Etcd) MoveSavedState(from, to string) (bool, error) {
	for range 10 {
		resp, err := e.get(e.savedKey(from))
		if err != nil {
			return false, fmt.Errorf("move saved state of host %q to %q: %w", from, to, err)
		}
		if len(resp.Kvs) == 0 || from == to {
			return false, nil
		}
		kv := resp.Kvs[0]
		s := &orchestratorv1.SavedState{}
		if err := decodeProto(kindSaved, kv.Value, s); err != nil {
			return false, fmt.Errorf("move saved state of host %q to %q: %w", from, to, err)
		}
		s.Host = to
		v, err := encodeProto(kindSaved, s)
		if err != nil {
			return false, err
		}
		toKey := e.savedKey(to)
		tr, ok, err := e.txn(
			[]clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(string(kv.Key)), "=", kv.ModRevision)},
			[]clientv3.Op{clientv3.OpTxn(
				[]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(toKey), "=", 0)},
				[]clientv3.Op{clientv3.OpPut(toKey, v), clientv3.OpDelete(string(kv.Key))}, nil)},
		)
		if err != nil {
			return false, fmt.Errorf("move saved state of host %q to %q: %w", from, to, err)
		}
		if ok {
			return tr.Responses[0].GetResponseTxn().GetSucceeded(), nil
		}
		// from changed between the read and the write: read again.
	}
	return false, fmt.Errorf("move saved state of host %q to %q: it kept changing", from, to)
}

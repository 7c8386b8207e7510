package state

import (
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

const kindCorrection = "correction"

func (e *Etcd) correctionKey(model string) string { return e.key("corrections/", model) }

// Correction returns the stored correction of a model (zero when none).
func (e *Etcd) Correction(model string) (Correction, error) {
	resp, err := e.get(e.correctionKey(model))
	if err != nil {
		return Correction{}, fmt.Errorf("read correction of %q: %w", model, err)
	}
	var c Correction
	if len(resp.Kvs) == 0 {
		return c, nil
	}
	if err := decodeJSON(kindCorrection, resp.Kvs[0].Value, &c); err != nil {
		e.badRecord(string(resp.Kvs[0].Key), err)
		return Correction{}, fmt.Errorf("read correction of %q: %w", model, err)
	}
	return c, nil
}

// UpdateCorrection applies fn to the stored correction of model and stores the result, in
// a transaction that holds only while the record is unchanged since it was read (retried).
func (e *Etcd) UpdateCorrection(model string, fn func(Correction) Correction) error {
	k := e.correctionKey(model)
	for range 10 {
		resp, err := e.get(k)
		if err != nil {
			return fmt.Errorf("store correction of %q: %w", model, err)
		}
		var c Correction
		var rev int64
		if len(resp.Kvs) > 0 {
			rev = resp.Kvs[0].ModRevision
			if err := decodeJSON(kindCorrection, resp.Kvs[0].Value, &c); err != nil {
				return fmt.Errorf("store correction of %q: %w", model, err)
			}
		}
		v, err := encodeJSON(kindCorrection, fn(c))
		if err != nil {
			return err
		}
		_, ok, err := e.txn([]clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(k), "=", rev)}, []clientv3.Op{clientv3.OpPut(k, v)})
		if err != nil {
			return fmt.Errorf("store correction of %q: %w", model, err)
		}
		if ok {
			return nil
		}
	}
	return fmt.Errorf("store correction of %q: it kept changing", model)
}

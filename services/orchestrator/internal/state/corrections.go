package state

import (
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Correction is what past runs of a diffusion model taught about its memory estimate:
// a moving average of measured peak minus estimate, in bytes.
type Correction struct {
	DeltaBytes float64 `json:"delta_bytes"`
	Samples    int     `json:"samples"`
}

// Correction returns the stored correction of a model (zero when none).
func (d *boltDB) Correction(model string) (Correction, error) {
	var c Correction
	err := d.view(func(tx *bolt.Tx) error {
		data := tx.Bucket(bucketCorrections).Get([]byte(model))
		if data == nil {
			return nil
		}
		return json.Unmarshal(data, &c)
	})
	if err != nil {
		return Correction{}, fmt.Errorf("read correction of %q: %w", model, err)
	}
	return c, nil
}

// UpdateCorrection applies fn to the stored correction of model and stores the result,
// in one transaction.
func (d *boltDB) UpdateCorrection(model string, fn func(Correction) Correction) error {
	err := d.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCorrections)
		var c Correction
		if data := b.Get([]byte(model)); data != nil {
			if err := json.Unmarshal(data, &c); err != nil {
				return err
			}
		}
		data, err := json.Marshal(fn(c))
		if err != nil {
			return err
		}
		return b.Put([]byte(model), data)
	})
	if err != nil {
		return fmt.Errorf("store correction of %q: %w", model, err)
	}
	return nil
}

// Package state is the orchestrator's crash-proof memory, in one embedded bbolt
// database file: the LLM state saved before an offload, the event log, the image jobs,
// and the memory corrections learnt from past runs.
//
// Every write is one bbolt transaction, committed with fsync before the call returns, so
// what a call stored survives a SIGKILL or a power cut the moment it returns. Values are
// protobuf messages (the API's own types), so the stored shape evolves with the contract.
package state

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

var (
	bucketSaved       = []byte("saved_state")
	bucketEvents      = []byte("events")
	bucketJobs        = []byte("jobs")
	bucketCorrections = []byte("corrections")
)

// ErrNotFound is returned for a job (or other record) that is not stored.
var ErrNotFound = errors.New("not found")

// DB is the orchestrator's database. It is safe for concurrent use.
type DB struct {
	bolt *bolt.DB
	// maxEvents bounds the event log; older events are deleted as new ones arrive.
	maxEvents int
}

// Options configure Open.
type Options struct {
	// MaxEvents is how many events are kept; 0 means 5000.
	MaxEvents int
	// LockTimeout bounds the wait for another process holding the file; 0 means 5 s.
	LockTimeout time.Duration
}

// Open opens (creating if needed) the database file at path.
func Open(path string, opts Options) (*DB, error) {
	if opts.MaxEvents <= 0 {
		opts.MaxEvents = 5000
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = 5 * time.Second
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create database directory: %w", err)
	}
	b, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout})
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	err = b.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketSaved, bucketEvents, bucketJobs, bucketCorrections} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		return nil
	})
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("init database %s: %w", path, err)
	}
	return &DB{bolt: b, maxEvents: opts.MaxEvents}, nil
}

// Close closes the database file.
func (d *DB) Close() error { return d.bolt.Close() }

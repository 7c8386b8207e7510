// Package state is the orchestrator's crash-proof memory: the LLM state saved before an
// offload, the event log, the image jobs, and the memory corrections learnt from past
// runs. Store is what it holds; DB is the handle every package uses, over one of two
// backends: the embedded bbolt file (Open, the default: one orchestrator) or etcd
// (NewEtcd: several orchestrator replicas, one leader, every write fenced; etcd*.go).
//
// Embedded: every write is one bbolt transaction, committed with fsync before the call
// returns, so what a call stored survives a SIGKILL or a power cut the moment it returns.
// Values are protobuf messages (the API's own types), so the stored shape evolves with
// the contract.
//
// The file is opened defensively (open.go): a file that is truncated or whose pages are
// damaged is moved aside (state.db.corrupt-<time>) and replaced by a fresh one, into which
// the saved LLM states still readable are copied first, then the other readable records.
// Every access goes through a guard that turns a bbolt panic (or a fault on the mapped
// file) into an error wrapping ErrCorrupt, and a record that does not decode is skipped
// and counted by the listings, never fatal to them.
package state

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
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

// ErrCorrupt is wrapped by the errors of a database access that met a damaged file (a
// bbolt panic or a fault on the mapped file, recovered). The orchestrator goes on; a
// restart moves the file aside and starts with the records still readable.
var ErrCorrupt = errors.New("the state database is damaged")

// ErrCorruptRecord is wrapped by the error of reading one record that does not decode.
// Listings skip such records (counted by BadRecords) instead.
var ErrCorruptRecord = errors.New("unreadable record in the state database")

// boltDB is the embedded store: one bbolt file. It is safe for concurrent use.
type boltDB struct {
	bolt *bolt.DB
	path string
	log  *slog.Logger
	// maxEvents bounds the event log; older events are deleted as new ones arrive.
	maxEvents int
	// recovery is set when Open found the file damaged and started a fresh one.
	recovery *Recovery
	// faults counts the accesses that met a damaged file (recovered panics).
	faults atomic.Int64
	// bad holds the records that did not decode ("bucket/key"), each counted once.
	bad badRecords
}

// Options configure Open.
type Options struct {
	// MaxEvents is how many events are kept; 0 means 5000.
	MaxEvents int
	// LockTimeout bounds the wait for another process holding the file; 0 means 5 s.
	LockTimeout time.Duration
	// Logger receives the recovery and damaged-record reports; default: discarded.
	Logger *slog.Logger
	// Now is the clock of the corrupt file's name; default time.Now.
	Now func() time.Time
}

// Recovery says that Open found the database file damaged, moved it aside and started a
// fresh one.
type Recovery struct {
	// Reason is what was wrong with the file.
	Reason string
	// MovedTo is where the damaged file is now (<path>.corrupt-<UTC time>).
	MovedTo string
	// At is when it was moved.
	At time.Time
	// SavedStates is how many saved LLM states were read from the damaged file and
	// restored (written first); Jobs, Events and Corrections count the other records.
	SavedStates, Jobs, Events, Corrections int
}

// String is the recovery told in one sentence.
func (r *Recovery) String() string {
	return fmt.Sprintf("the state database was damaged (%s): it was moved to %s and a fresh one started; "+
		"restored from it: %d saved LLM state(s), %d job(s), %d event(s), %d correction(s)",
		r.Reason, r.MovedTo, r.SavedStates, r.Jobs, r.Events, r.Corrections)
}

// Recovered returns what Open did about a damaged file, nil when the file was sound.
func (d *boltDB) Recovered() *Recovery { return d.recovery }

// Faults counts the accesses since Open that met a damaged file (each one failed with
// ErrCorrupt instead of crashing the process).
func (d *boltDB) Faults() int64 { return d.faults.Load() }

// BadRecords counts the distinct records that did not decode since Open (skipped by the
// listings).
func (d *boltDB) BadRecords() int {
	return d.bad.count()
}

// HealthDetail describes what is wrong with the database, "" when nothing is.
func (d *boltDB) HealthDetail() string {
	var parts []string
	if r := d.recovery; r != nil {
		parts = append(parts, r.String())
	}
	if n := d.Faults(); n > 0 {
		parts = append(parts, fmt.Sprintf("%d database access(es) met a damaged file since the start (restart the orchestrator to move it aside)", n))
	}
	if n := d.BadRecords(); n > 0 {
		parts = append(parts, fmt.Sprintf("%d unreadable record(s) skipped", n))
	}
	return strings.Join(parts, "; ")
}

// Open opens (creating if needed) the database file at path: the embedded store. A
// damaged file is moved aside and replaced (see Recovered); only an error that no fresh
// file can fix (the directory, the lock held by another process, a full disk) is returned.
func Open(path string, opts Options) (*DB, error) {
	b, err := openBolt(path, opts)
	if err != nil {
		return nil, err
	}
	return &DB{Store: b}, nil
}

func openBolt(path string, opts Options) (*boltDB, error) {
	if opts.MaxEvents <= 0 {
		opts.MaxEvents = 5000
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create database directory: %w", err)
	}
	d := &boltDB{path: path, log: opts.Logger, maxEvents: opts.MaxEvents}
	b, rec, err := openDefensively(path, opts)
	if err != nil {
		return nil, err
	}
	d.bolt, d.recovery = b, rec
	if rec != nil {
		d.log.Error("STATE DATABASE DAMAGED: "+rec.String(), "moved_to", rec.MovedTo, "reason", rec.Reason,
			"saved_states_restored", rec.SavedStates, "jobs_restored", rec.Jobs, "events_restored", rec.Events)
	}
	return d, nil
}

// initBuckets creates the buckets of a database.
func initBuckets(b *bolt.DB) error {
	return guard(func() error {
		return b.Update(func(tx *bolt.Tx) error {
			for _, name := range allBuckets {
				if _, err := tx.CreateBucketIfNotExists(name); err != nil {
					return fmt.Errorf("create bucket %s: %w", name, err)
				}
			}
			return nil
		})
	})
}

// allBuckets are the buckets, in the order a recovery restores them: the saved LLM states
// first.
var allBuckets = [][]byte{bucketSaved, bucketCorrections, bucketJobs, bucketEvents}

// Close closes the database file.
func (d *boltDB) Close() error {
	return guard(func() error { return d.bolt.Close() })
}

// view runs fn in a read transaction, turning a panic into an ErrCorrupt error.
func (d *boltDB) view(fn func(*bolt.Tx) error) error {
	return d.guarded(func() error { return d.bolt.View(fn) })
}

// update runs fn in a write transaction, turning a panic into an ErrCorrupt error.
func (d *boltDB) update(fn func(*bolt.Tx) error) error {
	return d.guarded(func() error { return d.bolt.Update(fn) })
}

func (d *boltDB) guarded(fn func() error) error {
	err := guard(fn)
	var pe *panicError
	if errors.As(err, &pe) {
		n := d.faults.Add(1)
		d.log.Error("STATE DATABASE DAMAGED: an access failed; restart the orchestrator to move the file aside",
			"path", d.path, "faults", n, "error", pe.Error())
	}
	return err
}

// badRecord counts a record that did not decode (once per record) and logs it.
func (d *boltDB) badRecord(bucket []byte, key string, err error) {
	id := string(bucket) + "/" + key
	if d.bad.add(id) {
		d.log.Warn("unreadable record in the state database skipped", "bucket", string(bucket), "key", key, "error", err)
	}
}

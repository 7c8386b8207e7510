package state

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// DefaultEtcdPrefix is the key prefix of everything the orchestrator stores in etcd.
const DefaultEtcdPrefix = "/genailab/orchestrator/"

// EtcdOptions configure NewEtcd.
type EtcdOptions struct {
	// Prefix is the key prefix of every record (default DefaultEtcdPrefix); several labs
	// may share one etcd under different prefixes.
	Prefix string
	// MaxEvents is how many events are kept; 0 means 5000.
	MaxEvents int
	// Timeout bounds each access (default 5 s): an etcd without quorum fails the access
	// instead of hanging the caller.
	Timeout time.Duration
	// Fenced makes every write conditional on the fence (Fence): with leader election, a
	// write of an orchestrator that does not hold the leadership is refused (ErrNotLeader).
	Fenced bool
	// Logger receives the damaged-record reports; default: discarded.
	Logger *slog.Logger
}

// Etcd is the etcd backend of the store: every record is one key under the prefix
// (saved/<host>, jobs/<id>, events/<id, 20 digits>, corrections/<model>), its value a
// versioned envelope (etcd_codec.go), and every write one etcd transaction, conditioned on
// the fence when the store is fenced. It is safe for concurrent use.
type Etcd struct {
	cli       *clientv3.Client
	prefix    string
	maxEvents int
	timeout   time.Duration
	fenced    bool
	log       *slog.Logger

	fenceMu  sync.Mutex
	fenceKey string
	fenceRev int64

	// evMu serialises event appends; nextEvent is the next id, 0 when it must be read.
	evMu      sync.Mutex
	nextEvent uint64

	bad badRecords

	errMu   sync.Mutex
	lastErr error
	errAt   time.Time
}

// NewEtcd returns the etcd store over cli (which the caller keeps and closes).
func NewEtcd(cli *clientv3.Client, o EtcdOptions) *Etcd {
	if o.Prefix == "" {
		o.Prefix = DefaultEtcdPrefix
	}
	if !strings.HasSuffix(o.Prefix, "/") {
		o.Prefix += "/"
	}
	if o.MaxEvents <= 0 {
		o.MaxEvents = 5000
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Etcd{cli: cli, prefix: o.Prefix, maxEvents: o.MaxEvents, timeout: o.Timeout, fenced: o.Fenced, log: o.Logger}
}

// DB is the store as every package holds it.
func (e *Etcd) DB() *DB { return &DB{Store: e} }

// Prefix is the key prefix of the store's records.
func (e *Etcd) Prefix() string { return e.prefix }

// Fence conditions every following write on key's creation revision being rev: the
// leader's election key (leader package). Once another orchestrator holds the leadership,
// the key is another one and every write of this one fails with ErrNotLeader.
func (e *Etcd) Fence(key string, rev int64) {
	e.fenceMu.Lock()
	e.fenceKey, e.fenceRev = key, rev
	e.fenceMu.Unlock()
	e.evMu.Lock()
	e.nextEvent = 0 // another leader may have appended events since
	e.evMu.Unlock()
}

// Unfence drops the fence: a fenced store refuses every write until the next Fence.
func (e *Etcd) Unfence() { e.Fence("", 0) }

func (e *Etcd) key(parts ...string) string { return e.prefix + strings.Join(parts, "") }

func (e *Etcd) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), e.timeout)
}

// note records the outcome of an access for HealthDetail.
func (e *Etcd) note(err error) error {
	if errors.Is(err, ErrNotLeader) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrCorruptRecord) {
		return err
	}
	e.errMu.Lock()
	if err != nil && e.lastErr == nil {
		e.errAt = time.Now()
	}
	e.lastErr = err
	e.errMu.Unlock()
	return err
}

// txn commits ops (and, when cmps hold, nothing else) in one transaction conditioned on
// the fence. It returns whether cmps held; a failed fence is ErrNotLeader.
func (e *Etcd) txn(cmps []clientv3.Cmp, then []clientv3.Op, orElse ...clientv3.Op) (*clientv3.TxnResponse, bool, error) {
	ctx, cancel := e.ctx()
	defer cancel()
	e.fenceMu.Lock()
	key, rev := e.fenceKey, e.fenceRev
	e.fenceMu.Unlock()
	if !e.fenced {
		resp, err := e.cli.Txn(ctx).If(cmps...).Then(then...).Else(orElse...).Commit()
		if err := e.note(err); err != nil {
			return nil, false, fmt.Errorf("etcd: %w", err)
		}
		return resp, resp.Succeeded, nil
	}
	if key == "" {
		return nil, false, ErrNotLeader
	}
	inner := clientv3.OpTxn(cmps, then, orElse)
	resp, err := e.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", rev)).Then(inner).Commit()
	if err := e.note(err); err != nil {
		return nil, false, fmt.Errorf("etcd: %w", err)
	}
	if !resp.Succeeded {
		return nil, false, fmt.Errorf("%w: the leadership this orchestrator held (%s) has passed to another", ErrNotLeader, key)
	}
	in := resp.Responses[0].GetResponseTxn()
	return (*clientv3.TxnResponse)(in), in.GetSucceeded(), nil
}

// get reads key (or a range, with opts) linearizably.
func (e *Etcd) get(key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	ctx, cancel := e.ctx()
	defer cancel()
	resp, err := e.cli.Get(ctx, key, opts...)
	if err := e.note(err); err != nil {
		return nil, fmt.Errorf("etcd: %w", err)
	}
	return resp, nil
}

// badRecord counts a record that did not decode (once per key) and logs it.
func (e *Etcd) badRecord(key string, err error) {
	if e.bad.add(key) {
		e.log.Warn("unreadable record in the etcd store skipped", "key", key, "error", err)
	}
}

// Recovered is nil: etcd keeps its own data sound (its members replicate and checksum it).
func (e *Etcd) Recovered() *Recovery { return nil }

// Faults is 0: a failed etcd access is an error, told by HealthDetail while it lasts.
func (e *Etcd) Faults() int64 { return 0 }

// BadRecords counts the distinct records that did not decode.
func (e *Etcd) BadRecords() int {
	return e.bad.count()
}

// HealthDetail tells an etcd that the last access could not reach (no quorum, no member)
// and the records skipped, "" when nothing is wrong.
func (e *Etcd) HealthDetail() string {
	var parts []string
	e.errMu.Lock()
	if e.lastErr != nil {
		parts = append(parts, fmt.Sprintf("etcd store unreachable since %s: %v", e.errAt.UTC().Format(time.RFC3339), e.lastErr))
	}
	e.errMu.Unlock()
	if n := e.BadRecords(); n > 0 {
		parts = append(parts, fmt.Sprintf("%d unreadable record(s) skipped", n))
	}
	return strings.Join(parts, "; ")
}

// Close is nothing: the client belongs to the caller.
func (e *Etcd) Close() error { return nil }

// Package leader elects one orchestrator among replicas sharing an etcd
// (go.etcd.io/etcd/client/v3/concurrency: a session whose lease has a short TTL, and
// Election.Campaign). The leader alone dispatches; its writes are fenced on its election
// key (state.Etcd.Fence), so that a leader that was deposed while paused cannot write
// once it wakes. Losing the lease ends the leadership: Run returns ErrLost, and the
// process exits for its supervisor to start it again, as a follower.
package leader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// ErrLost is returned by Run when the leadership was lost (the lease expired: etcd was
// unreachable or this process was paused past the TTL).
var ErrLost = errors.New("the leadership was lost")

// Options configure an Elector.
type Options struct {
	// Prefix is the election's key prefix (<store prefix>leader/).
	Prefix string
	// ID is what this replica is called by the others: its gRPC address, told to callers
	// a follower refuses.
	ID string
	// TTL is the lease of the leadership (whole seconds, at least 1; default 2 s): a dead
	// leader is replaced within about TTL.
	TTL time.Duration
	// Logger receives the elections; default: discarded.
	Logger *slog.Logger
}

// Elector campaigns for the leadership and tells who leads.
type Elector struct {
	cli *clientv3.Client
	o   Options

	mu      sync.Mutex
	leading bool
	leader  string // the leader's ID, "" when unknown
	since   time.Time
}

// New returns an elector over cli.
func New(cli *clientv3.Client, o Options) *Elector {
	if o.TTL < time.Second {
		o.TTL = 2 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Elector{cli: cli, o: o}
}

// SetID names this replica, when its address is known only once it listens (before Run).
func (e *Elector) SetID(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.o.ID = id
}

// Status is who leads as this replica knows it.
type Status struct {
	// Leading is true on the leader.
	Leading bool
	// Leader is the leader's ID ("" when none is known: an election is under way or etcd
	// cannot be reached).
	Leader string
	// Since is when this replica became leader (zero on a follower).
	Since time.Time
}

// Status returns who leads.
func (e *Elector) Status() Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	return Status{Leading: e.leading, Leader: e.leader, Since: e.since}
}

func (e *Elector) set(leading bool, leader string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if leading && !e.leading {
		e.since = time.Now()
	}
	if !leading {
		e.since = time.Time{}
	}
	e.leading, e.leader = leading, leader
}

// Run campaigns until this replica leads, then runs lead with a context that ends when
// the leadership is lost, and the election key and its creation revision to fence the
// writes on. It returns ErrLost once the lease expired, lead's error when lead returns
// first (resigning), or nil when ctx ends.
func (e *Elector) Run(ctx context.Context, lead func(ctx context.Context, key string, rev int64) error) error {
	e.mu.Lock()
	id := e.o.ID
	e.mu.Unlock()
	s, err := concurrency.NewSession(e.cli, concurrency.WithTTL(int(e.o.TTL/time.Second)), concurrency.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("etcd session: %w", err)
	}
	defer s.Close()
	el := concurrency.NewElection(s, e.o.Prefix)
	octx, stopObserve := context.WithCancel(ctx)
	defer stopObserve()
	go e.observe(octx, el)
	if err := el.Campaign(ctx, id); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("campaign for the leadership: %w", err)
	}
	key, rev := el.Key(), el.Rev()
	e.set(true, id)
	e.o.Logger.Info("this orchestrator leads", "id", id, "key", key, "revision", rev)
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- lead(lctx, key, rev) }()
	select {
	case <-s.Done():
		e.set(false, "")
		cancel()
		<-done
		e.o.Logger.Error("LEADERSHIP LOST: the lease expired", "id", id, "key", key)
		return ErrLost
	case err := <-done:
		e.set(false, "")
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		_ = el.Resign(rctx)
		rcancel()
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
}

// observe follows who leads.
func (e *Elector) observe(ctx context.Context, el *concurrency.Election) {
	for resp := range el.Observe(ctx) {
		if len(resp.Kvs) == 0 {
			continue
		}
		id := string(resp.Kvs[0].Value)
		e.mu.Lock()
		if !e.leading {
			e.leader = id
		}
		e.mu.Unlock()
	}
}

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
	// OnChange, when set, is called with the new Status whenever it changes (from the
	// elector's goroutines, one at a time, under the elector's lock: it must neither block
	// nor call the elector).
	OnChange func(Status)
}

// Elector campaigns for the leadership and tells who leads.
type Elector struct {
	cli *clientv3.Client
	o   Options

	mu      sync.Mutex
	leading bool
	leader  string // the leader's ID, "" when unknown
	since   time.Time
	session bool // a live etcd session: etcd answers
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
	// Session is true while this replica holds a live etcd session (its lease is kept
	// alive: etcd answers, with a quorum); false before the first one and once it expired.
	Session bool
}

// Status returns who leads.
func (e *Elector) Status() Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.status()
}

func (e *Elector) status() Status {
	return Status{Leading: e.leading, Leader: e.leader, Since: e.since, Session: e.session}
}

// update changes the status under the lock and tells OnChange when it changed.
func (e *Elector) update(f func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	before := e.status()
	f()
	if after := e.status(); after != before && e.o.OnChange != nil {
		e.o.OnChange(after)
	}
}

func (e *Elector) set(leading bool, leader string) {
	e.update(func() {
		if leading && !e.leading {
			e.since = time.Now()
		}
		if !leading {
			e.since = time.Time{}
		}
		e.leading, e.leader = leading, leader
	})
}

func (e *Elector) setSession(live bool) { e.update(func() { e.session = live }) }

// Run campaigns until this replica leads, then runs lead with a context that ends when
// the leadership is lost, and the election key and its creation revision to fence the
// writes on. It returns ErrLost once the lease expired, lead's error when lead returns
// first (resigning), or nil when ctx ends. A follower whose session expires (etcd lost its
// quorum, or could not be reached, for longer than the TTL) campaigns again on a new one
// once etcd answers: it never returns for that.
func (e *Elector) Run(ctx context.Context, lead func(ctx context.Context, key string, rev int64) error) error {
	e.mu.Lock()
	id := e.o.ID
	e.mu.Unlock()
	for {
		s, err := concurrency.NewSession(e.cli, concurrency.WithTTL(int(e.o.TTL/time.Second)), concurrency.WithContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			e.o.Logger.Warn("no etcd session (etcd unreachable or without quorum); trying again", "error", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(e.o.TTL / 2):
			}
			continue
		}
		e.setSession(true)
		el, err := e.campaign(ctx, s, id)
		if err != nil {
			s.Close()
			e.setSession(false)
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, errSessionEnded) {
				e.set(false, "") // who leads is known again once etcd answers
				e.o.Logger.Warn("the etcd session of this follower expired; campaigning again", "id", id)
				continue
			}
			return err
		}
		defer s.Close()
		defer e.setSession(false)
		return e.lead(ctx, s, el, lead)
	}
}

var errSessionEnded = errors.New("the etcd session ended")

// campaign waits, following who leads, until this replica leads on s; errSessionEnded
// when s expired first.
func (e *Elector) campaign(ctx context.Context, s *concurrency.Session, id string) (*concurrency.Election, error) {
	el := concurrency.NewElection(s, e.o.Prefix)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.Done():
			// Said at once: Campaign may take long to return (on its cancellation it
			// resigns, which waits for etcd's quorum).
			e.set(false, "")
			e.setSession(false)
			cancel()
		case <-cctx.Done():
		}
	}()
	go e.observe(cctx, el)
	// Campaign, once cancelled, resigns on the client's own context: without etcd's quorum
	// that waits until the quorum returns or the client closes. A stop does not wait for
	// it (the caller closes the client after Run); the end of a session does, and is
	// already said.
	campaigned := make(chan error, 1)
	go func() { campaigned <- el.Campaign(cctx, id) }()
	var err error
	select {
	case err = <-campaigned:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if err != nil {
		if ctx.Err() == nil && cctx.Err() != nil {
			return nil, errSessionEnded
		}
		return nil, fmt.Errorf("campaign for the leadership: %w", err)
	}
	// Campaign returns once the keys before this one are gone; this one must still be
	// there, under this session (it is not when the session expired meanwhile).
	resp, err := e.cli.Get(ctx, el.Key())
	if err != nil {
		return nil, fmt.Errorf("check the election key: %w", err)
	}
	if len(resp.Kvs) == 0 || resp.Kvs[0].CreateRevision != el.Rev() {
		return nil, errSessionEnded
	}
	return el, nil
}

// lead runs lead for as long as s lives.
func (e *Elector) lead(ctx context.Context, s *concurrency.Session, el *concurrency.Election, lead func(ctx context.Context, key string, rev int64) error) error {
	key, rev := el.Key(), el.Rev()
	e.mu.Lock()
	id := e.o.ID
	e.mu.Unlock()
	e.set(true, id)
	e.o.Logger.Info("this orchestrator leads", "id", id, "key", key, "revision", rev)
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- lead(lctx, key, rev) }()
	select {
	case <-s.Done():
		e.set(false, "")
		e.setSession(false)
		cancel()
		<-done
		if ctx.Err() != nil {
			// The session ends with ctx too: a shutdown, not a loss; the key goes now,
			// not when the lease expires, so that another replica leads at once.
			rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			_ = el.Resign(rctx)
			rcancel()
			return nil
		}
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
		e.update(func() {
			if !e.leading {
				e.leader = id
			}
		})
	}
}

package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/pkg/grpcerr"
	"github.com/genailab/genailab/services/orchestrator/internal/leader"
	"github.com/genailab/genailab/services/orchestrator/internal/state"
)

// The -state values.
const (
	StateBolt = "bbolt"
	StateEtcd = "etcd"
)

// LeaderHealthService is the grpc.health.v1 service name that is SERVING only on the
// orchestrator that leads (always, with -state bbolt): the readiness of the replicas.
// Readiness is the leader's alone because followers do not forward writes: a Kubernetes
// Service over the replicas then sends every call to the one that can take it, and during
// a failover (at most about two lease TTLs) it has no endpoint, which callers see as a
// retryable Unavailable. Liveness is the whole server's health ("").
const LeaderHealthService = "genailab.orchestrator.v1.Leader"

// ReasonNotLeader is the ErrorInfo reason of a write refused by a follower.
const ReasonNotLeader = "NOT_LEADER"

// followerMethods are the calls a follower answers, from the shared store.
var followerMethods = map[string]bool{
	"GetJob": true, "ListJobs": true, "WatchJob": true, "WatchEvents": true, "ListHosts": true,
	"GetHealth": true, "GetSavedState": true,
}

// replica is the election state of an orchestrator on etcd.
type replica struct {
	cli   *clientv3.Client
	store *state.Etcd
	el    *leader.Elector
}

// openReplica connects to etcd and prepares the fenced store and the election.
func openReplica(opts Options, id string, log *slog.Logger) (*replica, error) {
	cli, err := opts.Etcd.Client()
	if err != nil {
		return nil, err
	}
	store := state.NewEtcd(cli, state.EtcdOptions{Prefix: opts.EtcdPrefix, MaxEvents: opts.MaxEvents, Fenced: true, Logger: log})
	el := leader.New(cli, leader.Options{Prefix: store.Prefix() + "leader", ID: id, TTL: opts.LeaderTTL, Logger: log})
	return &replica{cli: cli, store: store, el: el}, nil
}

func (r *replica) close() { r.cli.Close() }

// refusal is the error of a call a follower does not take.
func (r *replica) refusal(method string) error {
	st := r.el.Status()
	who := "no leader is elected yet (an election is under way, or etcd has no quorum)"
	if st.Leader != "" {
		who = "the leader is " + st.Leader
	}
	return grpcerr.New(grpcerr.Info{Code: codes.Unavailable, Reason: ReasonNotLeader, RetryAfter: time.Second,
		Message: fmt.Sprintf("%s: this orchestrator is a follower; %s", method, who)})
}

func methodName(full string) string { return full[strings.LastIndex(full, "/")+1:] }

func (r *replica) allowed(full string) bool {
	if !strings.HasPrefix(full, "/"+orchestratorv1.OrchestratorService_ServiceDesc.ServiceName+"/") {
		return true // health, reflection
	}
	return followerMethods[methodName(full)] || r.el.Status().Leading
}

// interceptors refuse, on a follower, every call but the reads of followerMethods.
func (r *replica) interceptors() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if !r.allowed(info.FullMethod) {
				return nil, r.refusal(methodName(info.FullMethod))
			}
			return h(ctx, req)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if !r.allowed(info.FullMethod) {
				return r.refusal(methodName(info.FullMethod))
			}
			return h(srv, ss)
		}),
	}
}

// healthDetail says the replica's role, for GetHealth's detail header.
func (r *replica) healthDetail() string {
	st := r.el.Status()
	switch {
	case st.Leading:
		return "leader since " + st.Since.UTC().Format(time.RFC3339)
	case st.Leader != "":
		return "follower (not dispatching); the leader is " + st.Leader
	}
	return "follower (not dispatching); no leader elected (an election is under way, or etcd has no quorum)"
}

// run campaigns; once leading, it fences the store and runs lead until the leadership is
// lost (leader.ErrLost: the process ends, to start again as a follower) or ctx ends.
func (r *replica) run(ctx context.Context, ready func(bool), lead func(ctx context.Context) error) error {
	ready(false)
	err := r.el.Run(ctx, func(lctx context.Context, key string, rev int64) error {
		r.store.Fence(key, rev)
		ready(true)
		defer ready(false)
		return lead(lctx)
	})
	r.store.Unfence()
	if errors.Is(err, leader.ErrLost) {
		return fmt.Errorf("%w: exiting so that this orchestrator starts again as a follower", err)
	}
	return err
}

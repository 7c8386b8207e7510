package server

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/pkg/grpcerr"
	"github.com/genailab/genailab/pkg/grpcserver"
	"github.com/genailab/genailab/pkg/tlsconfig"
	"github.com/genailab/genailab/services/orchestrator/internal/leader"
	"github.com/genailab/genailab/services/orchestrator/internal/state"
)

// The -state values.
const (
	StateBolt = "bbolt"
	StateEtcd = "etcd"
)

// ReadyHealthService is the grpc.health.v1 service name of the readiness of a replica:
// SERVING on every orchestrator that serves and holds a live etcd session (always, with
// -state bbolt). Every replica is ready, not the leader alone, because followers answer
// the reads from the shared store and forward everything else to the leader
// (forward.go): a Kubernetes Service over the replicas may send a call to any of them. A
// readiness of the leader alone would leave one Ready pod of three, and a
// PodDisruptionBudget over them could then never let the leader be evicted (a node drain
// would hang on it). A replica that loses etcd (its session expired: no quorum, or cut
// off) is not ready: it could neither read the store nor know the leader. Liveness is the
// whole server's health (""), which etcd does not change: an etcd outage must not
// restart every replica.
const ReadyHealthService = "genailab.orchestrator.v1.Ready"

// LeaderHealthService is the grpc.health.v1 service name that is SERVING only on the
// orchestrator that leads (always, with -state bbolt), for whoever wants the leader itself
// (a tool, a test, a dashboard); callers need not: any ready replica takes every call.
const LeaderHealthService = "genailab.orchestrator.v1.Leader"

// ReasonNotLeader is the ErrorInfo reason of a call a follower can neither answer nor
// forward: no leader is known (an election is under way, or etcd has no quorum), or the
// call was forwarded to it by another replica and it no longer leads.
const ReasonNotLeader = "NOT_LEADER"

// followerMethods are the calls a follower answers itself, from the shared store.
var followerMethods = map[string]bool{
	"GetJob": true, "ListJobs": true, "WatchJob": true, "WatchEvents": true, "ListHosts": true,
	"GetHealth": true, "GetSavedState": true,
}

// replica is the election state of an orchestrator on etcd.
type replica struct {
	cli   *clientv3.Client
	store *state.Etcd
	el    *leader.Elector
	fwd   *forwarder
	// serving sets a health status (grpcserver.Server.SetServing); set before run.
	serving func(service string, serving bool)
}

// openReplica connects to etcd and prepares the fenced store, the election and the
// forwarding of calls to the leader. The leader is dialled as the hosts are, with the
// orchestrator's client TLS (clientTLS: -tls-ca, its client certificate for mutual TLS;
// nil: plaintext), expecting opts.PeerServerName in its certificate (default: the host of
// its address); no token of its own: the caller's authorization is forwarded.
func openReplica(opts Options, id string, clientTLS *tls.Config, log *slog.Logger) (*replica, error) {
	if clientTLS != nil && opts.PeerServerName != "" {
		clientTLS = clientTLS.Clone()
		clientTLS.ServerName = opts.PeerServerName
	}
	dial := []grpc.DialOption{
		grpc.WithTransportCredentials(tlsconfig.TransportCredentials(clientTLS)),
		grpcserver.CallOptions(),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: cmp.Or(opts.KeepaliveTime, DefaultKeepaliveTime), Timeout: cmp.Or(opts.KeepaliveTimeout, DefaultKeepaliveTimeout), PermitWithoutStream: true}),
	}
	cli, err := opts.Etcd.Client()
	if err != nil {
		return nil, err
	}
	r := &replica{cli: cli, fwd: newForwarder(id, dial)}
	r.store = state.NewEtcd(cli, state.EtcdOptions{Prefix: opts.EtcdPrefix, MaxEvents: opts.MaxEvents, Fenced: true, Logger: log})
	r.el = leader.New(cli, leader.Options{Prefix: r.store.Prefix() + "leader", ID: id, TTL: opts.LeaderTTL, Logger: log,
		OnChange: func(st leader.Status) { r.serving(ReadyHealthService, st.Session) }})
	return r, nil
}

// db is the store as the orchestrator holds it: the etcd store, with every job record
// that has a result stamped with the replica whose gallery holds its images.
func (r *replica) db() *state.DB {
	return &state.DB{Store: galleryStamp{Etcd: r.store, self: r.fwd.id}}
}

// galleryStamp stamps Job.replica on the records it stores. Only the leader writes, and
// it writes a job's result once its images are in its own gallery; a record stamped
// before (by an earlier leader) keeps its stamp. Embedding *state.Etcd keeps its feed
// (state.Feed) and every other method.
type galleryStamp struct {
	*state.Etcd
	self func() string
}

// PutJob stores j, stamped when it has a result and no stamp yet.
func (g galleryStamp) PutJob(j *orchestratorv1.Job) error { return g.Etcd.PutJob(g.stamp(j)) }

// stamp is j stamped with this replica when it has a result and no stamp yet (a copy; j
// is not changed).
func (g galleryStamp) stamp(j *orchestratorv1.Job) *orchestratorv1.Job {
	if j.GetResult() != nil && j.GetReplica() == "" {
		j = proto.CloneOf(j)
		j.Replica = g.self()
	}
	return j
}

// AppendEventsWithJobs stores evs with the job records jobs in one transaction, each
// record stamped as PutJob stamps it: the jobs manager stores a job's end this way (with
// its last event), and that end is the record that carries the result.
func (g galleryStamp) AppendEventsWithJobs(evs []*orchestratorv1.Event, jobs []*orchestratorv1.Job) error {
	stamped := make([]*orchestratorv1.Job, len(jobs))
	for i, j := range jobs {
		stamped[i] = g.stamp(j)
	}
	return g.Etcd.AppendEventsWithJobs(evs, stamped)
}

// image answers GetJob with include_image when this replica's gallery lacks the image
// (the local answer failed): the replica named in the record as the images' holder
// answers instead, or a NotFound (the holder is this replica, or unknown) or Unavailable
// (the holder does not answer) that names it. A call forwarded here is answered here,
// never forwarded again. A shared ReadWriteMany gallery volume makes every local answer
// succeed, and none of this happens.
func (r *replica) image(ctx context.Context, full string, req *orchestratorv1.GetJobRequest, local error) (any, error) {
	if forwarded(ctx) {
		return nil, local
	}
	j, err := r.store.Job(req.GetId())
	if err != nil || j.GetStatus() != orchestratorv1.JobStatus_JOB_STATUS_SUCCEEDED {
		return nil, local // not an image to fetch elsewhere: the local answer stands
	}
	switch holder := j.GetReplica(); holder {
	case "":
		return nil, grpcerr.Errorf(codes.NotFound, ReasonImageNotHere, "GetJob %s: its image is not in this replica's gallery (%s), and its record names no replica that holds it (it was made before the records did): %s",
			req.GetId(), r.fwd.id(), grpcerr.Message(local))
	case r.fwd.id():
		return nil, grpcerr.Errorf(codes.NotFound, ReasonImageNotHere, "GetJob %s: its image is not in the gallery of this replica (%s), which made it: %s",
			req.GetId(), holder, grpcerr.Message(local))
	}
	holder := j.GetReplica()
	resp, err := r.fwd.unary(ctx, holder, full, req)
	if err != nil {
		if c := status.Code(err); c == codes.Unavailable || c == codes.DeadlineExceeded {
			return nil, grpcerr.New(grpcerr.Info{Code: codes.Unavailable, Reason: ReasonImageNotHere, RetryAfter: 5 * time.Second,
				Message: fmt.Sprintf("GetJob %s: its image is in the gallery of the replica %s, which does not answer (%s); a shared ReadWriteMany gallery volume keeps every image on every replica", req.GetId(), holder, status.Convert(err).Message())})
		}
		return nil, err
	}
	return resp, nil
}

// ReasonImageNotHere is the ErrorInfo reason of a GetJob whose image is on a replica that
// cannot give it.
const ReasonImageNotHere = "IMAGE_ON_OTHER_REPLICA"

// setID names this replica once its address is known (it listens), before run.
func (r *replica) setID(id string) {
	r.el.SetID(id)
	r.fwd.setSelf(id)
}

func (r *replica) close() {
	r.fwd.close()
	r.cli.Close()
}

// refusal is the error of a call a follower does not take.
func (r *replica) refusal(method, why string) error {
	return grpcerr.New(grpcerr.Info{Code: codes.Unavailable, Reason: ReasonNotLeader, RetryAfter: time.Second,
		Message: fmt.Sprintf("%s: this orchestrator is a follower; %s", method, why)})
}

func methodName(full string) string { return full[strings.LastIndex(full, "/")+1:] }

// route says who takes a call: "" this replica (the leader, a read of followerMethods,
// health and reflection), else the leader's address to forward it to; an error when no
// leader is known or the call was already forwarded once.
func (r *replica) route(ctx context.Context, full string) (string, error) {
	if !strings.HasPrefix(full, "/"+orchestratorv1.OrchestratorService_ServiceDesc.ServiceName+"/") || followerMethods[methodName(full)] {
		return "", nil
	}
	st := r.el.Status()
	switch {
	case st.Leading:
		return "", nil
	case forwarded(ctx):
		md, _ := metadata.FromIncomingContext(ctx)
		return "", r.refusal(methodName(full), fmt.Sprintf("the call was forwarded by %s, which took this one for the leader: the leadership changed", strings.Join(md.Get(ForwardedHeader), ",")))
	case st.Leader == "" || st.Leader == r.fwd.id():
		return "", r.refusal(methodName(full), "no leader is elected yet (an election is under way, or etcd has no quorum)")
	}
	return st.Leader, nil
}

// interceptors forward, on a follower, every call but the reads of followerMethods to
// the leader.
func (r *replica) interceptors() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			to, err := r.route(ctx, info.FullMethod)
			if err != nil {
				return nil, err
			}
			if to != "" {
				return r.fwd.unary(ctx, to, info.FullMethod, req)
			}
			resp, err := h(ctx, req)
			if g, ok := req.(*orchestratorv1.GetJobRequest); ok && err != nil && g.GetIncludeImage() {
				return r.image(ctx, info.FullMethod, g, err)
			}
			return resp, err
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			to, err := r.route(ss.Context(), info.FullMethod)
			if err != nil {
				return err
			}
			if to == "" {
				if info.FullMethod == orchestratorv1.OrchestratorService_WatchJob_FullMethodName {
					ss = imageStream{ServerStream: ss, r: r}
				}
				return h(srv, ss)
			}
			return r.fwd.stream(ss, to, info.FullMethod)
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
		return "follower (not dispatching; writes are forwarded); the leader is " + st.Leader
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

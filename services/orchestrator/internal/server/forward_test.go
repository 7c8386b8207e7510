package server

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/pkg/auth"
	"github.com/genailab/genailab/pkg/grpcserver"
	"github.com/genailab/genailab/pkg/testenv"
	"github.com/genailab/genailab/pkg/tlsconfig"
	"github.com/genailab/genailab/pkg/tlsconfig/pki"
	"github.com/genailab/genailab/services/orchestrator/internal/agent"
	"github.com/genailab/genailab/services/orchestrator/internal/etcdconn"
)

// The forwarding of a follower's calls to the leader, on a real three-member etcd and
// three real orchestrators (Run) on loopback. No image is made here (the real engines run
// through a follower in services/orchestrator/e2e): the replicas' one host is a
// "blackhole" that accepts TCP connections and never answers, so a call that needs the
// host waits on the leader until its caller gives up. What is checked is who takes each
// call and what comes back.

const testToken = "forward-test-token"

// testReplica is one orchestrator replica run in this process.
type testReplica struct {
	addr   string
	calls  chan rpcCall // the calls this replica's server ended (its request log)
	stop   context.CancelFunc
	done   chan error
	orch   orchestratorv1.OrchestratorServiceClient
	health healthpb.HealthClient
}

// freeAddr reserves a loopback port for a replica: its address is its election value
// (-advertise-addr), known before it listens.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// blackhole accepts connections and never answers them: a host whose calls hang.
func blackhole(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

// rpcCall is a call a server ended, from its request log (pkg/grpcserver logs each).
type rpcCall struct {
	method string
	code   string
}

// rpcTap passes records to Handler, and sends the request log's "rpc" records to calls.
type rpcTap struct {
	slog.Handler
	calls chan rpcCall
}

func (h *rpcTap) Enabled(ctx context.Context, l slog.Level) bool { return true }

func (h *rpcTap) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "rpc" {
		var c rpcCall
		r.Attrs(func(a slog.Attr) bool {
			switch a.Key {
			case "method":
				c.method = a.Value.String()
			case "code":
				c.code = a.Value.String()
			}
			return true
		})
		select {
		case h.calls <- c:
		default:
		}
	}
	if !h.Handler.Enabled(ctx, r.Level) {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h *rpcTap) WithAttrs(as []slog.Attr) slog.Handler {
	return &rpcTap{Handler: h.Handler.WithAttrs(as), calls: h.calls}
}

func (h *rpcTap) WithGroup(name string) slog.Handler {
	return &rpcTap{Handler: h.Handler.WithGroup(name), calls: h.calls}
}

// ended waits until r's server has ended a call of method, and returns its code.
func (r *testReplica) ended(t *testing.T, method string, within time.Duration) string {
	t.Helper()
	timeout := time.After(within)
	for {
		select {
		case c := <-r.calls:
			if strings.HasSuffix(c.method, "/"+method) {
				return c.code
			}
		case <-timeout:
			t.Fatalf("%s did not end a %s call within %s", r.addr, method, within)
		}
	}
}

func startTestReplica(t *testing.T, etcd *testenv.EtcdCluster, host string) *testReplica {
	t.Helper()
	return startTestReplicaWith(t, etcd, host, nil)
}

// replicaTLS is the mutual TLS of a test lab: each replica serves and dials with one host
// certificate that names genailab-orchestrator only (not the loopback address it is
// dialled at), as a pod's names its Service, not its pod IP.
type replicaTLS struct {
	ca, cert, key string
	client        *tls.Config
}

func newReplicaTLS(t *testing.T) *replicaTLS {
	t.Helper()
	ca, err := pki.NewCA("forward-test-ca", 0)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(pki.Request{CommonName: "genailab-orchestrator", DNSNames: []string{"genailab-orchestrator"}, Usage: pki.HostUsage})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	r := &replicaTLS{ca: filepath.Join(dir, "ca.crt"), cert: filepath.Join(dir, "tls.crt"), key: filepath.Join(dir, "tls.key")}
	for p, data := range map[string][]byte{r.ca: ca.CertPEM, r.cert: leaf.CertPEM, r.key: leaf.KeyPEM} {
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if r.client, err = tlsconfig.Client(r.ca, r.cert, r.key, "genailab-orchestrator"); err != nil {
		t.Fatal(err)
	}
	return r
}

// startTestReplicaWith starts a replica; with tc, over mutual TLS, and peerName is its
// -peer-server-name.
func startTestReplicaWith(t *testing.T, etcd *testenv.EtcdCluster, host string, tc *replicaTLS, peerName ...string) *testReplica {
	t.Helper()
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	r := &testReplica{addr: addr, calls: make(chan rpcCall, 256), stop: cancel, done: make(chan error, 1)}
	opts := Options{
		GRPC: grpcserver.Flags{Addr: addr, Token: testToken},
		// A host list (even of one), not the single host of -llm-addr...: GetHealth then
		// answers without asking the host.
		Hosts:   []agent.Spec{{Name: "h1", DiffusionAddr: host, LLMAddr: host, MonitorAddr: host}},
		DataDir: t.TempDir(), QueueSize: 8, Workers: 1,
		State: StateEtcd, Etcd: etcdconn.Flags{Endpoints: strings.Join(etcd.Endpoints(), ",")},
		EtcdPrefix: "/forward-test/", LeaderTTL: time.Second, AdvertiseAddr: addr,
		Logger: slog.New(&rpcTap{Handler: slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}), calls: r.calls}).With("replica", addr),
	}
	creds := insecure.NewCredentials()
	if tc != nil {
		opts.GRPC.TLS = tlsconfig.ServerFlags{Cert: tc.cert, Key: tc.key, ClientCA: tc.ca}
		opts.ClientTLS = tlsconfig.ClientFlags{CA: tc.ca, Cert: tc.cert, Key: tc.key}
		if len(peerName) > 0 {
			opts.PeerServerName = peerName[0]
		}
		creds = credentials.NewTLS(tc.client)
	}
	go func() { r.done <- Run(ctx, opts) }()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds),
		grpc.WithPerRPCCredentials(auth.TokenCredentials{Token: testToken, Secure: tc != nil}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close(); r.kill(t) })
	r.orch = orchestratorv1.NewOrchestratorServiceClient(cc)
	r.health = healthpb.NewHealthClient(cc)
	return r
}

// kill stops the replica (it resigns) and waits for Run to return.
func (r *testReplica) kill(t *testing.T) {
	t.Helper()
	if r.stop == nil {
		return
	}
	r.stop()
	r.stop = nil
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("replica %s: %v", r.addr, err)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("replica %s did not stop", r.addr)
	}
}

// waitHealth watches service on r (no polling) until it is SERVING.
func (r *testReplica) waitHealth(t *testing.T, service string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		// WaitForReady: the replica may not listen yet.
		w, err := r.health.Watch(ctx, &healthpb.HealthCheckRequest{Service: service}, grpc.WaitForReady(true))
		if err != nil {
			t.Fatalf("%s: watch %q: %v", r.addr, service, err)
		}
		for {
			m, err := w.Recv()
			if err != nil {
				if ctx.Err() != nil {
					t.Fatalf("%s: %q never SERVING", r.addr, service)
				}
				break // the server was not serving yet: watch again
			}
			if m.Status == healthpb.HealthCheckResponse_SERVING {
				return
			}
		}
	}
}

func (r *testReplica) serving(t *testing.T, service string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	h, err := r.health.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		t.Fatalf("%s: health %q: %v", r.addr, service, err)
	}
	return h.Status == healthpb.HealthCheckResponse_SERVING
}

// knowsLeader waits until follower f names leader in its health detail (it learns who
// leads from its election watch).
func (r *testReplica) knowsLeader(t *testing.T, leader string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var md metadata.MD
		if _, err := r.orch.GetHealth(context.Background(), &orchestratorv1.GetHealthRequest{}, grpc.Header(&md)); err != nil {
			t.Fatal(err)
		}
		if d := md.Get(HealthDetailHeader); len(d) == 1 && strings.HasSuffix(d[0], "the leader is "+leader) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not know the leader %s: %v", r.addr, leader, md.Get(HealthDetailHeader))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func image() *diffusionv1.ImageParams {
	return &diffusionv1.ImageParams{Prompt: "a red cube", Width: proto.Int32(64), Height: proto.Int32(64), Steps: proto.Int32(2)}
}

func reason(err error) string {
	for _, d := range status.Convert(err).Details() {
		if d, ok := d.(*errdetails.ErrorInfo); ok {
			return d.Reason
		}
	}
	return ""
}

// replicaTrio starts three replicas; the first leads.
func replicaTrio(t *testing.T) (a, b, c *testReplica) {
	t.Helper()
	etcd := testenv.StartEtcd(t, 3)
	host := blackhole(t)
	a = startTestReplica(t, etcd, host)
	a.waitHealth(t, LeaderHealthService)
	b = startTestReplica(t, etcd, host)
	c = startTestReplica(t, etcd, host)
	for _, f := range []*testReplica{b, c} {
		// Every replica is ready, the followers too; one leads.
		f.waitHealth(t, ReadyHealthService)
		f.knowsLeader(t, a.addr)
		if f.serving(t, LeaderHealthService) {
			t.Fatalf("%s leads besides %s", f.addr, a.addr)
		}
	}
	if !a.serving(t, ReadyHealthService) {
		t.Fatal("the leader is not ready")
	}
	return a, b, c
}

// A write sent to a follower is taken by the leader, with the caller's token (the leader
// requires it too); the leader's refusals come back unchanged, code, message and details;
// a caller that cancels a stream cancels the leader's call; a forwarded call never goes
// on; after the leader goes, the replica that wins answers itself and the other forwards
// to it.
func TestFollowersForwardToTheLeader(t *testing.T) {
	a, b, c := replicaTrio(t)
	ctx := context.Background()

	// A refusal of the leader's own (a host it does not know) passes through unchanged.
	bad := &orchestratorv1.SubmitJobRequest{Params: image(), Host: "no-such-host"}
	_, direct := a.orch.SubmitJob(ctx, bad)
	if reason(direct) == "" || !strings.Contains(status.Convert(direct).Message(), "no-such-host") {
		t.Fatalf("the leader's refusal: %v (reason %q)", direct, reason(direct))
	}
	drain(a.calls)
	_, via := b.orch.SubmitJob(ctx, bad)
	if !proto.Equal(status.Convert(direct).Proto(), status.Convert(via).Proto()) {
		t.Fatalf("a refusal through a follower differs:\n direct %v\n via    %v", status.Convert(direct).Proto(), status.Convert(via).Proto())
	}
	if code := a.ended(t, "SubmitJob", 5*time.Second); code != status.Code(direct).String() {
		t.Fatalf("the leader ended the forwarded SubmitJob with %s", code)
	}
	_, direct = a.orch.CancelJob(ctx, &orchestratorv1.CancelJobRequest{Id: "no-such-job"})
	_, via = c.orch.CancelJob(ctx, &orchestratorv1.CancelJobRequest{Id: "no-such-job"})
	if status.Code(direct) == codes.OK || !proto.Equal(status.Convert(direct).Proto(), status.Convert(via).Proto()) {
		t.Fatalf("CancelJob of an unknown job: direct %v, through a follower %v", direct, via)
	}

	// Without the token, the follower refuses the call itself (it checks before it forwards).
	if _, err := orchestratorv1.NewOrchestratorServiceClient(dialPlain(t, b.addr)).SubmitJob(ctx, bad); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("SubmitJob without the token: %v", err)
	}

	// A forwarded call that reaches a follower is refused, never forwarded again.
	fctx := metadata.AppendToOutgoingContext(ctx, ForwardedHeader, "127.0.0.1:1")
	drain(a.calls)
	_, err := c.orch.SubmitJob(fctx, bad)
	if status.Code(err) != codes.Unavailable || reason(err) != ReasonNotLeader || !strings.Contains(err.Error(), "forwarded by 127.0.0.1:1") {
		t.Fatalf("a forwarded call on a follower: %v", err)
	}
	if _, err := a.orch.SubmitJob(fctx, bad); status.Code(err) != status.Code(direct) && reason(err) != reason(direct) {
		t.Fatalf("a forwarded call on the leader: %v", err)
	}
	if code := a.ended(t, "SubmitJob", 5*time.Second); code == codes.Unavailable.String() {
		t.Fatal("the follower forwarded a forwarded call")
	}

	// SubmitJob through a follower: the job is the leader's.
	sub, err := b.orch.SubmitJob(ctx, &orchestratorv1.SubmitJobRequest{Params: image()})
	if err != nil {
		t.Fatalf("SubmitJob through a follower: %v", err)
	}
	if _, err := a.orch.GetJob(ctx, &orchestratorv1.GetJobRequest{Id: sub.GetJob().GetId()}); err != nil {
		t.Fatalf("the leader does not have the job a follower forwarded: %v", err)
	}
	// CancelJob through the other follower: the leader cancels it and answers once it ended.
	cj, err := c.orch.CancelJob(ctx, &orchestratorv1.CancelJobRequest{Id: sub.GetJob().GetId()})
	if err != nil || cj.GetJob().GetStatus() != orchestratorv1.JobStatus_JOB_STATUS_CANCELLED {
		t.Fatalf("CancelJob through a follower: %v %v", cj.GetJob().GetStatus(), err)
	}

	// A server stream through a follower: the job id comes first (the leader queued the
	// image; its host never answers); the caller cancels, and the leader's call ends,
	// Canceled, and with it its job.
	drain(a.calls)
	sctx, cancel := context.WithCancel(ctx)
	stream, err := b.orch.GenerateImage(sctx, &orchestratorv1.GenerateImageRequest{Params: image()})
	if err != nil {
		t.Fatal(err)
	}
	first, err := stream.Recv()
	if err != nil || first.GetJobId() == "" {
		t.Fatalf("GenerateImage through a follower: %v %v", first, err)
	}
	cancel()
	for err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.Canceled {
		t.Fatalf("after the cancel: %v", err)
	}
	if code := a.ended(t, "GenerateImage", 5*time.Second); code != codes.Canceled.String() {
		t.Fatalf("the leader's GenerateImage ended %s", code)
	}
	if j := waitJobEnds(t, a, first.GetJobId()); j.GetStatus() != orchestratorv1.JobStatus_JOB_STATUS_CANCELLED {
		t.Fatalf("the job of a cancelled stream: %v", j)
	}

	// A deadline is kept: the leader's call ends with the caller's deadline.
	drain(a.calls)
	deadline := time.Now().Add(time.Second)
	dctx, dcancel := context.WithDeadline(ctx, deadline)
	defer dcancel()
	stream, err = c.orch.GenerateImage(dctx, &orchestratorv1.GenerateImageRequest{Params: image()})
	for err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("a forwarded call past its deadline: %v", err)
	}
	// The leader's call carries the deadline (grpc-timeout) and is cancelled by the
	// follower's at the same instant: whichever comes first ends it, at the deadline.
	if code := a.ended(t, "GenerateImage", 5*time.Second); code != codes.DeadlineExceeded.String() && code != codes.Canceled.String() {
		t.Fatalf("the leader's GenerateImage past the deadline ended %s", code)
	}
	if late := time.Since(deadline); late > 500*time.Millisecond {
		t.Fatalf("the leader's call ended %s after the deadline", late)
	}

	// The leader goes: one of the followers wins, answers itself, the other forwards to it.
	a.kill(t)
	won, other := waitNewLeader(t, b, c)
	other.knowsLeader(t, won.addr)
	_, direct = won.orch.SubmitJob(ctx, bad)
	drain(won.calls)
	_, via = other.orch.SubmitJob(ctx, bad)
	if reason(direct) == ReasonNotLeader || !proto.Equal(status.Convert(direct).Proto(), status.Convert(via).Proto()) {
		t.Fatalf("after the failover: the new leader %v, the follower %v", direct, via)
	}
	if code := won.ended(t, "SubmitJob", 5*time.Second); code != status.Code(direct).String() {
		t.Fatalf("the new leader ended the forwarded SubmitJob with %s", code)
	}
}

func drain(c chan rpcCall) {
	for {
		select {
		case <-c:
		default:
			return
		}
	}
}

func dialPlain(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// waitJobEnds follows the job (WatchJob, no polling) on r until it has ended.
func waitJobEnds(t *testing.T, r *testReplica, id string) *orchestratorv1.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w, err := r.orch.WatchJob(ctx, &orchestratorv1.WatchJobRequest{Id: id})
	if err != nil {
		t.Fatal(err)
	}
	var last *orchestratorv1.Job
	for {
		m, err := w.Recv()
		if errors.Is(err, context.DeadlineExceeded) || status.Code(err) == codes.DeadlineExceeded {
			t.Fatalf("job %s did not end: %v", id, last)
		}
		if err != nil {
			if last == nil {
				t.Fatalf("watch job %s: %v", id, err)
			}
			return last
		}
		last = m.GetJob()
		switch last.GetStatus() {
		case orchestratorv1.JobStatus_JOB_STATUS_SUCCEEDED, orchestratorv1.JobStatus_JOB_STATUS_FAILED, orchestratorv1.JobStatus_JOB_STATUS_CANCELLED:
			return last
		}
	}
}

// waitNewLeader waits until one of rs leads (watching both health services).
func waitNewLeader(t *testing.T, rs ...*testReplica) (won, other *testReplica) {
	t.Helper()
	got := make(chan *testReplica, len(rs))
	for _, r := range rs {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			w, err := r.health.Watch(ctx, &healthpb.HealthCheckRequest{Service: LeaderHealthService})
			if err != nil {
				return
			}
			for {
				m, err := w.Recv()
				if err != nil {
					return
				}
				if m.Status == healthpb.HealthCheckResponse_SERVING {
					got <- r
					return
				}
			}
		}()
	}
	select {
	case won = <-got:
	case <-time.After(30 * time.Second):
		t.Fatal("no new leader")
	}
	for _, r := range rs {
		if r != won {
			other = r
		}
	}
	return won, other
}

// waitHealthStatus watches service on r (no polling) until it is want.
func (r *testReplica) waitHealthStatus(t *testing.T, service string, want healthpb.HealthCheckResponse_ServingStatus, within time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	w, err := r.health.Watch(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		t.Fatal(err)
	}
	for {
		m, err := w.Recv()
		if err != nil {
			t.Fatalf("%s: %q never %s: %v", r.addr, service, want, err)
		}
		if m.Status == want {
			return
		}
	}
}

// Readiness is every replica's that holds a live etcd session: etcd losing its quorum
// makes the follower unready (the leader exits: its lease is gone), and ready again once
// the quorum returns; liveness stays SERVING throughout.
func TestReadinessFollowsEtcd(t *testing.T) {
	etcd := testenv.StartEtcd(t, 3)
	host := blackhole(t)
	a := startTestReplica(t, etcd, host)
	a.waitHealth(t, LeaderHealthService)
	b := startTestReplica(t, etcd, host)
	b.waitHealth(t, ReadyHealthService)
	etcd.Members[0].Kill()
	etcd.Members[1].Kill()
	b.waitHealthStatus(t, ReadyHealthService, healthpb.HealthCheckResponse_NOT_SERVING, 30*time.Second)
	if !b.serving(t, "") {
		t.Fatal("a replica without etcd is not live: it would be restarted for etcd's outage")
	}
	select {
	case err := <-a.done:
		a.stop = nil
		if err == nil || !strings.Contains(err.Error(), "leadership was lost") {
			t.Fatalf("the leader without a quorum: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the leader runs on without a quorum")
	}
	for _, m := range etcd.Members[:2] {
		if err := m.Start(); err != nil {
			t.Fatal(err)
		}
	}
	b.waitHealthStatus(t, ReadyHealthService, healthpb.HealthCheckResponse_SERVING, 60*time.Second)
	b.waitHealth(t, LeaderHealthService)
}

// Over mutual TLS, a follower dials the leader with the orchestrator's client certificate
// and expects -peer-server-name in the leader's (which does not name the address it is
// dialled at, as a pod's certificate does not name its pod IP): the leader's answer comes
// back. Without -peer-server-name the handshake fails, and the caller is told Unavailable.
func TestFollowerForwardsOverMutualTLS(t *testing.T) {
	etcd := testenv.StartEtcd(t, 3)
	host := blackhole(t)
	tc := newReplicaTLS(t)
	a := startTestReplicaWith(t, etcd, host, tc, "genailab-orchestrator")
	a.waitHealth(t, LeaderHealthService)
	b := startTestReplicaWith(t, etcd, host, tc, "genailab-orchestrator")
	c := startTestReplicaWith(t, etcd, host, tc) // no -peer-server-name
	for _, f := range []*testReplica{b, c} {
		f.waitHealth(t, ReadyHealthService)
		f.knowsLeader(t, a.addr)
	}
	bad := &orchestratorv1.SubmitJobRequest{Params: image(), Host: "no-such-host"}
	_, direct := a.orch.SubmitJob(context.Background(), bad)
	if status.Code(direct) != codes.NotFound {
		t.Fatalf("the leader: %v", direct)
	}
	_, via := b.orch.SubmitJob(context.Background(), bad)
	if !proto.Equal(status.Convert(direct).Proto(), status.Convert(via).Proto()) {
		t.Fatalf("through a follower over mTLS: %v, want %v", via, direct)
	}
	_, err := c.orch.SubmitJob(context.Background(), bad)
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("a follower that expects the leader's address in its certificate: %v", err)
	}
}

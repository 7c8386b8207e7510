package leader_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/genailab/genailab/pkg/testenv"
	"github.com/genailab/genailab/services/orchestrator/internal/leader"
)

var (
	etcdEnds []string
	etcdErr  error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "leader-etcd-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	c, err := testenv.RunEtcd(dir, 1)
	if err == nil {
		etcdEnds = c.Endpoints()
	}
	etcdErr = err
	code := m.Run()
	if c != nil {
		c.Kill()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

func client(t testing.TB) *clientv3.Client {
	t.Helper()
	testenv.Need(t, testenv.RequireEtcdEnv, etcdErr)
	cli, err := clientv3.New(clientv3.Config{Endpoints: etcdEnds, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

type term struct {
	id       string
	key      string
	rev      int64
	ended    chan struct{}
	runError chan error
}

// campaign runs an elector on its own client; leading receives its term once it leads.
func campaign(t testing.TB, cli *clientv3.Client, prefix, id string, leading chan<- term) *leader.Elector {
	el := leader.New(cli, leader.Options{Prefix: prefix, ID: id, TTL: 2 * time.Second})
	ended := make(chan struct{})
	runErr := make(chan error, 1)
	go func() {
		runErr <- el.Run(context.Background(), func(ctx context.Context, key string, rev int64) error {
			leading <- term{id: id, key: key, rev: rev, ended: ended, runError: runErr}
			<-ctx.Done()
			close(ended)
			return nil
		})
	}()
	return el
}

// One of two electors leads; the other knows who. When the leader's client dies without
// resigning (as a SIGKILL leaves it), its lease expires and the other leads within about
// the TTL, on a new key.
func TestElectionAndTakeoverAfterTheLeaderDies(t *testing.T) {
	prefix := "/test/" + t.Name() + "/leader"
	leading := make(chan term, 2)
	deadCli := client(t)
	a := campaign(t, deadCli, prefix, "a:1", leading)
	first := <-leading
	if first.id != "a:1" || !a.Status().Leading {
		t.Fatalf("first leader %+v", first)
	}
	b := campaign(t, client(t), prefix, "b:2", leading)
	deadline := time.Now().Add(10 * time.Second)
	for b.Status().Leader != "a:1" {
		if time.Now().After(deadline) {
			t.Fatalf("the follower does not know the leader: %+v", b.Status())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if b.Status().Leading {
		t.Fatal("two leaders")
	}
	deadCli.Close() // no resignation, no keepalive: the lease runs out
	died := time.Now()
	second := <-leading
	took := time.Since(died)
	t.Logf("takeover %s with a 2s lease", took.Round(time.Millisecond))
	if second.id != "b:2" || second.key == first.key {
		t.Fatalf("second term %+v after %+v", second, first)
	}
	if took > 2*2*time.Second {
		t.Errorf("takeover took %s, more than 2 × TTL", took)
	}
	if err := <-first.runError; !errors.Is(err, leader.ErrLost) && err != nil {
		t.Fatalf("the dead leader's Run: %v", err)
	}
}

// OnChange tells every change of the status as it happens: the session, then the
// leadership; a stop resigns at once (the next candidate does not wait for the lease) and
// ends the session, and Run returns nil, not ErrLost.
func TestStatusChangesAndAStopResigns(t *testing.T) {
	prefix := fmt.Sprintf("/test/%s/%d/leader", t.Name(), time.Now().UnixNano())
	changes := make(chan leader.Status, 16)
	el := leader.New(client(t), leader.Options{Prefix: prefix, ID: "a:1", TTL: 2 * time.Second,
		OnChange: func(st leader.Status) { changes <- st }})
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() {
		runErr <- el.Run(ctx, func(ctx context.Context, _ string, _ int64) error { <-ctx.Done(); return nil })
	}()
	next := func() leader.Status {
		select {
		case st := <-changes:
			return st
		case <-time.After(10 * time.Second):
			t.Fatal("no status change")
			return leader.Status{}
		}
	}
	if st := next(); !st.Session || st.Leading {
		t.Fatalf("first change %+v, want the session", st)
	}
	// Its own key may be observed before it leads: who leads, then that it does.
	st := next()
	for !st.Leading {
		if !st.Session || st.Leader != "a:1" {
			t.Fatalf("change %+v before the leadership", st)
		}
		st = next()
	}
	if !st.Session || st.Leader != "a:1" {
		t.Fatalf("the leadership: %+v", st)
	}
	leading := make(chan term, 1)
	campaign(t, client(t), prefix, "b:2", leading)
	stopped := time.Now()
	cancel()
	if err := <-runErr; err != nil {
		t.Fatalf("Run after a stop: %v", err)
	}
	if st := el.Status(); st.Session || st.Leading {
		t.Fatalf("after the stop: %+v", st)
	}
	select {
	case <-leading:
		if took := time.Since(stopped); took > time.Second {
			t.Errorf("the next leader waited %s: the stop did not resign", took)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no next leader after the stop")
	}
}

// Without etcd's quorum, a follower says at once that its session is gone, and a stop
// returns at once (Campaign's own cleanup would wait for the quorum).
func TestFollowerWithoutQuorumStopsAtOnce(t *testing.T) {
	c := testenv.StartEtcd(t, 3)
	newClient := func() *clientv3.Client {
		cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cli.Close() })
		return cli
	}
	leading := make(chan term, 1)
	campaign(t, newClient(), "/q/leader", "a:1", leading)
	<-leading
	lost := make(chan struct{})
	var once sync.Once
	f := leader.New(newClient(), leader.Options{Prefix: "/q/leader", ID: "b:2", TTL: time.Second,
		OnChange: func(st leader.Status) {
			if !st.Session && st.Leader == "" {
				once.Do(func() { close(lost) })
			}
		}})
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() {
		runErr <- f.Run(ctx, func(context.Context, string, int64) error { return errors.New("must not lead") })
	}()
	deadline := time.Now().Add(10 * time.Second)
	for f.Status().Leader != "a:1" {
		if time.Now().After(deadline) {
			t.Fatalf("the follower does not know the leader: %+v", f.Status())
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.Members[0].Kill()
	c.Members[1].Kill()
	select {
	case <-lost:
	case <-time.After(15 * time.Second):
		t.Fatalf("the follower still thinks it has a session: %+v", f.Status())
	}
	stopped := time.Now()
	cancel()
	select {
	case err := <-runErr:
		if err != nil {
			t.Fatalf("Run after a stop without quorum: %v", err)
		}
		t.Logf("stopped in %s without a quorum", time.Since(stopped).Round(time.Millisecond))
	case <-time.After(5 * time.Second):
		t.Fatal("a stop without quorum waits for the quorum")
	}
}

// BenchmarkTakeover measures the time from a leader's death (its client closed without
// resigning) to the next leader's term, with a 2 s lease, as a ratio to the TTL.
func BenchmarkTakeover(b *testing.B) {
	for i := 0; i < b.N; i++ {
		prefix := fmt.Sprintf("/bench/%d/leader", i)
		leading := make(chan term, 2)
		dead := client(b)
		campaign(b, dead, prefix, "a", leading)
		<-leading
		campaign(b, client(b), prefix, "b", leading)
		dead.Close()
		died := time.Now()
		<-leading
		b.ReportMetric(time.Since(died).Seconds()/2, "takeover/TTL")
	}
}

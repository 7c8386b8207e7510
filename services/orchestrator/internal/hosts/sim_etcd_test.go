package hosts

import (
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/genailab/genailab/pkg/testenv"
	"github.com/genailab/genailab/services/orchestrator/internal/state"
)

// BenchmarkFollow100SimulatedHostsOnEtcd is the orchestrator side's CPU while it follows
// 100 simulated hosts (telemetry at 1 Hz, their events into the store) with the etcd store
// (a real one-member etcd in its own process, not counted), measured with getrusage over
// a 5 s window, as BenchmarkPlacement100SimulatedHosts measures it on bbolt.
func BenchmarkFollow100SimulatedHostsOnEtcd(b *testing.B) {
	etcd := testenv.StartEtcd(b, 1)
	cli, err := clientv3.New(clientv3.Config{Endpoints: etcd.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cli.Close() })
	startSimOn(b, 100, state.NewEtcd(cli, state.EtcdOptions{}).DB())
	for b.Loop() {
	}
	var before, after syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	start := time.Now()
	time.Sleep(5 * time.Second)
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	cpu := time.Duration(after.Utime.Nano()+after.Stime.Nano()-before.Utime.Nano()-before.Stime.Nano()) * time.Nanosecond
	b.ReportMetric(100*cpu.Seconds()/time.Since(start).Seconds(), "%cpu-following-100-hosts")
}

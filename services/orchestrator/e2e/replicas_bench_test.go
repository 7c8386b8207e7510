package e2e

import (
	"context"
	"io"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/pkg/testenv"
)

// BenchmarkDispatchEtcdOverBbolt compares one 256×256 image (4 steps, real sd-cli, tiny
// model, no offload: the budget allows it) through an orchestrator on bbolt with the same
// image through a leading replica on a three-member etcd, alternating the two on one
// stack, and reports etcd ÷ bbolt.
func BenchmarkDispatchEtcdOverBbolt(b *testing.B) {
	etcd := testenv.StartEtcd(b, 3)
	s := newStack(b, stackOptions{})
	r := s.startReplica("orchestrator-etcd", etcd.Endpoints())
	r.waitLeading(b, 30*time.Second)
	params := &diffusionv1.ImageParams{Prompt: "bench", Width: proto.Int32(256), Height: proto.Int32(256), Steps: proto.Int32(4), Seed: ptr(int64(1))}
	image := func(c orchestratorv1.OrchestratorServiceClient) time.Duration {
		t0 := time.Now()
		stream, err := c.GenerateImage(context.Background(), &orchestratorv1.GenerateImageRequest{Params: params})
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := stream.Recv(); err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
		}
		return time.Since(t0)
	}
	image(s.orch) // the model's first load, on neither side
	var bolt, ed time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%2 == 0 {
			bolt += image(s.orch)
			ed += image(r.orch)
		} else {
			ed += image(r.orch)
			bolt += image(s.orch)
		}
	}
	b.ReportMetric(bolt.Seconds()/float64(b.N), "s/image-bbolt")
	b.ReportMetric(ed.Seconds()/float64(b.N), "s/image-etcd")
	b.ReportMetric(ed.Seconds()/bolt.Seconds(), "etcd/bbolt")
}

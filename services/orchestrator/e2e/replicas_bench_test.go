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
	benchImagePair(b, s.orch, r.orch, "bbolt", "etcd")
}

// benchImagePair times one 256×256 image (4 steps, seed 1) through base and through other,
// alternating which goes first, after one image through base loads the model (on neither
// side). It reports the mean per image of each, s/image-<baseName> and s/image-<otherName>,
// and their ratio <otherName>/<baseName>.
func benchImagePair(b *testing.B, base, other orchestratorv1.OrchestratorServiceClient, baseName, otherName string) {
	b.Helper()
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
	image(base)
	var tb, to time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%2 == 0 {
			tb += image(base)
			to += image(other)
		} else {
			to += image(other)
			tb += image(base)
		}
	}
	b.ReportMetric(tb.Seconds()/float64(b.N), "s/image-"+baseName)
	b.ReportMetric(to.Seconds()/float64(b.N), "s/image-"+otherName)
	b.ReportMetric(to.Seconds()/tb.Seconds(), otherName+"/"+baseName)
}

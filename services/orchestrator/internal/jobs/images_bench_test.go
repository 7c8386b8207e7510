package jobs

import (
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
)

// BenchmarkGallerySave compares the gallery's save (the PNG and its JSON record written and
// synced in parallel, the directory synced once) with the same two files written one after
// the other (each synced, then the directory: the save before), alternating the two, at the
// sizes of the e2e benchmarks' stand-in PNGs: 256×256 (155 kB) and 1024×1024 (2.4 MB).
// Both are durable when they return; what differs is how many syncs the caller waits for.
func BenchmarkGallerySave(b *testing.B) {
	for _, c := range []struct {
		name string
		size int
	}{{"256", 155 << 10}, {"1024", 2400 << 10}} {
		b.Run(c.name, func(b *testing.B) {
			g := gallery{dir: b.TempDir(), createTemp: osCreateTemp}
			png := make([]byte, c.size)
			_, _ = rand.Read(png)
			var ids idSource
			job := func() *orchestratorv1.Job {
				return &orchestratorv1.Job{
					Id: ids.next(), Status: orchestratorv1.JobStatus_JOB_STATUS_SUCCEEDED, CreatedAt: timestamppb.Now(), FinishedAt: timestamppb.Now(),
					Params: &diffusionv1.ImageParams{Prompt: "bench", Width: proto.Int32(256), Height: proto.Int32(256), Steps: proto.Int32(1)},
					Result: &diffusionv1.ImageResult{Seed: 5, Width: 256, Height: 256, TimeTakenMs: 80},
				}
			}
			var parallel, oneByOne time.Duration
			b.ResetTimer()
			for range b.N {
				j := job()
				t0 := time.Now()
				if err := g.save(j, png, nil); err != nil {
					b.Fatal(err)
				}
				parallel += time.Since(t0)
				j = job()
				t1 := time.Now()
				if err := g.saveOneByOne(j, png); err != nil {
					b.Fatal(err)
				}
				oneByOne += time.Since(t1)
			}
			b.StopTimer()
			b.ReportMetric(float64(oneByOne.Microseconds())/1000/float64(b.N), "one-by-one-ms/op")
			b.ReportMetric(float64(parallel.Microseconds())/1000/float64(b.N), "parallel-ms/op")
			b.ReportMetric(float64(parallel)/float64(oneByOne), "ratio")
		})
	}
}

// saveOneByOne is the baseline of BenchmarkGallerySave: the save as it was before its files
// were written in parallel.
func (g gallery) saveOneByOne(j *orchestratorv1.Job, png []byte) error {
	if err := g.writeAtomic(g.pngPath(j.GetId()), png); err != nil {
		return err
	}
	meta, err := protojson.MarshalOptions{Multiline: true}.Marshal(j)
	if err != nil {
		return fmt.Errorf("encode job %s: %w", j.GetId(), err)
	}
	if err := g.writeAtomic(g.jsonPath(j.GetId()), meta); err != nil {
		return err
	}
	return syncDir(g.dir)
}

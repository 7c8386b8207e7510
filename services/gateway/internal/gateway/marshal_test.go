package gateway

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/protobuf/encoding/protojson"

	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
)

// protojsonMarshaler is what the gateway marshals every other message with, and what it
// marshalled the seed's image result with before seedjson.
func protojsonMarshaler() *runtime.JSONPb {
	return &runtime.JSONPb{MarshalOptions: protojson.MarshalOptions{EmitUnpopulated: true}}
}

func randomImageResponse(rng *rand.Rand, size int) *orchestratorv1.CreateImageResponse {
	img := make([]byte, size)
	for i := range img {
		img[i] = byte(rng.Uint32())
	}
	return &orchestratorv1.CreateImageResponse{
		Image: img, Format: "png", TimeTakenMs: rng.Uint32(), Seed: rng.Uint32(),
		Width: rng.Int32N(4096), Height: rng.Int32N(4096),
	}
}

// TestSeedResultMarshalIsProtojsonsJSON: the seed's image result, written by seedjson, is
// the JSON document protojson writes for it (every field, zero ones too), value for value.
func TestSeedResultMarshalIsProtojsonsJSON(t *testing.T) {
	m := &streamMarshaler{JSONPb: protojsonMarshaler()}
	rng := rand.New(rand.NewPCG(3, 4))
	cases := []*orchestratorv1.CreateImageResponse{
		{},
		{Image: []byte("\x89PNG\r\n\x1a\n"), Format: "png", TimeTakenMs: 4294967295, Seed: 4294967295, Width: -1, Height: 2147483647},
	}
	for range 30 {
		cases = append(cases, randomImageResponse(rng, rng.IntN(3000)))
	}
	for i, c := range cases {
		got, err := m.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		want, err := protojsonMarshaler().Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		var g, w map[string]any
		if err := json.Unmarshal(got, &g); err != nil {
			t.Fatalf("case %d: not JSON: %v: %.200s", i, err, got)
		}
		if err := json.Unmarshal(want, &w); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(g, w) {
			t.Fatalf("case %d:\n got %.300s\nwant %.300s", i, got, want)
		}
	}
}

// BenchmarkSeedResultMarshal is the seed's result for a 155 kB PNG (a 256x256 image)
// marshalled by the gateway (seedjson) and by protojson, the two alternated in every
// iteration; reported: each one's time and their ratio.
func BenchmarkSeedResultMarshal(b *testing.B) {
	r := randomImageResponse(rand.New(rand.NewPCG(1, 2)), 155_000)
	gw, pj := &streamMarshaler{JSONPb: protojsonMarshaler()}, protojsonMarshaler()
	var gwTime, pjTime time.Duration
	for b.Loop() {
		t0 := time.Now()
		if _, err := gw.Marshal(r); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := pj.Marshal(r); err != nil {
			b.Fatal(err)
		}
		gwTime, pjTime = gwTime+t1.Sub(t0), pjTime+time.Since(t1)
	}
	b.ReportMetric(float64(gwTime.Nanoseconds())/float64(b.N), "gateway-ns/op")
	b.ReportMetric(float64(pjTime.Nanoseconds())/float64(b.N), "protojson-ns/op")
	b.ReportMetric(float64(gwTime)/float64(pjTime), "ratio")
}

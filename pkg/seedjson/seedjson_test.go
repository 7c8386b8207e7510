package seedjson_test

import (
	"encoding/base64"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/genailab/genailab/pkg/seedjson"
)

// seedResponse is the result as encoding/json writes it from the seed's field list: the
// byte-for-byte reference.
type seedResponse struct {
	Image     string `json:"image"`
	Format    string `json:"format"`
	TimeTaken int64  `json:"timeTaken"`
	Seed      int64  `json:"seed"`
	Width     int64  `json:"width"`
	Height    int64  `json:"height"`
}

func reference(t testing.TB, r seedjson.Result) []byte {
	b, err := json.Marshal(seedResponse{
		Image: base64.StdEncoding.EncodeToString(r.PNG), Format: r.Format, TimeTaken: r.TimeTakenMs,
		Seed: r.Seed, Width: r.Width, Height: r.Height,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAppendIsEncodingJSONsBytes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	cases := []seedjson.Result{
		{},
		{PNG: []byte{0x89, 'P', 'N', 'G'}, Format: "png", TimeTakenMs: 54, Seed: 4294967295, Width: 256, Height: 256},
		{Format: `a "quoted" <format>` + "\u2028", Seed: -1, Width: -3},
	}
	for range 50 {
		png := make([]byte, rng.IntN(5000))
		for i := range png {
			png[i] = byte(rng.Uint32())
		}
		cases = append(cases, seedjson.Result{PNG: png, Format: "png", TimeTakenMs: rng.Int64N(1e6), Seed: rng.Int64N(1 << 32),
			Width: rng.Int64N(4096), Height: rng.Int64N(4096)})
	}
	for i, c := range cases {
		want := reference(t, c)
		if got := seedjson.Append(nil, c); string(got) != string(want) {
			t.Fatalf("case %d:\n got %.200s\nwant %.200s", i, got, want)
		}
		prefix := []byte("HTTP body: ")
		if got := seedjson.Append(prefix, c); string(got) != string(prefix)+string(want) {
			t.Fatalf("case %d appended to a prefix: %.200s", i, got)
		}
	}
}

// BenchmarkAppend is a 155 kB PNG (a 256x256 image) encoded by Append and by
// encoding/json as the seed's wrapper did, the two alternated in every iteration;
// reported: each one's time and their ratio.
func BenchmarkAppend(b *testing.B) {
	png := make([]byte, 155_000)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range png {
		png[i] = byte(rng.Uint32())
	}
	r := seedjson.Result{PNG: png, Format: "png", TimeTakenMs: 54, Seed: 7, Width: 256, Height: 256}
	var fast, std time.Duration
	for b.Loop() {
		t0 := time.Now()
		seedjson.Append(nil, r)
		t1 := time.Now()
		reference(b, r)
		fast, std = fast+t1.Sub(t0), std+time.Since(t1)
	}
	b.ReportMetric(float64(fast.Nanoseconds())/float64(b.N), "seedjson-ns/op")
	b.ReportMetric(float64(std.Nanoseconds())/float64(b.N), "encoding-json-ns/op")
	b.ReportMetric(float64(fast)/float64(std), "ratio")
}

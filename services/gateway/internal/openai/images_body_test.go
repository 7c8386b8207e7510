package openai

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"
)

// imagesResponseRef is OpenAI's images response as encoding/json writes it: the
// byte-for-byte reference for appendImagesResponse.
type imagesResponseRef struct {
	Created int64 `json:"created"`
	Data    []struct {
		B64JSON string `json:"b64_json"`
	} `json:"data"`
}

func encodeRef(t testing.TB, created int64, pngs [][]byte) []byte {
	ref := imagesResponseRef{Created: created, Data: make([]struct {
		B64JSON string `json:"b64_json"`
	}, len(pngs))}
	for i, p := range pngs {
		ref.Data[i].B64JSON = base64.StdEncoding.EncodeToString(p)
	}
	var b bytes.Buffer
	if err := json.NewEncoder(&b).Encode(ref); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// randomPNG is n random bytes, standing for a PNG (the writers do not look inside).
func randomPNG(rng *rand.Rand, n int) []byte {
	png := make([]byte, n)
	for i := range png {
		png[i] = byte(rng.Uint32())
	}
	return png
}

// randomPNGs is n random byte strings shorter than maxLen.
func randomPNGs(rng *rand.Rand, n, maxLen int) [][]byte {
	pngs := make([][]byte, n)
	for i := range pngs {
		pngs[i] = randomPNG(rng, rng.IntN(maxLen))
	}
	return pngs
}

func TestImagesResponseIsEncodingJSONsBytes(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range 40 {
		pngs := randomPNGs(rng, i%5, 3000) // a batch of 0 to 4
		created := rng.Int64N(2e9)
		want := encodeRef(t, created, pngs)
		if got := appendImagesResponse(nil, created, pngs); !bytes.Equal(got, want) {
			t.Fatalf("case %d:\n got %.300s\nwant %.300s", i, got, want)
		}
	}
}

// BenchmarkImagesResponse is the response for one 155 kB PNG (a 256x256 image), written
// by appendImagesResponse and by encoding/json, alternated in every iteration.
func BenchmarkImagesResponse(b *testing.B) {
	pngs := [][]byte{randomPNG(rand.New(rand.NewPCG(1, 2)), 155_000)}
	var fast, std time.Duration
	for b.Loop() {
		t0 := time.Now()
		appendImagesResponse(nil, 1, pngs)
		t1 := time.Now()
		encodeRef(b, 1, pngs)
		fast, std = fast+t1.Sub(t0), std+time.Since(t1)
	}
	b.ReportMetric(float64(fast.Nanoseconds())/float64(b.N), "append-ns/op")
	b.ReportMetric(float64(std.Nanoseconds())/float64(b.N), "encoding-json-ns/op")
	b.ReportMetric(float64(fast)/float64(std), "ratio")
}

// TestImageEventJSONIsEncodingJSONsBytes: a streamed image event with its PNG put in
// place is what encoding/json writes for the event with the base64 string in it.
func TestImageEventJSONIsEncodingJSONsBytes(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for i, png := range randomPNGs(rng, 40, 3000) {
		idx := i
		ev := imageEvent{Type: `image_generation.partial_image "b64_json":"`, CreatedAt: rng.Int64N(2e9), Size: "256x256",
			Quality: "auto", Background: "opaque", OutputFormat: "png", PartialImageIndex: &idx}
		if i%2 == 1 {
			ev.Type, ev.PartialImageIndex, ev.Usage = "image_edit.completed", nil, &imageUsage{}
		}
		ev.B64JSON = "stale"
		got := ev.json(png)
		ev.B64JSON = base64.StdEncoding.EncodeToString(png)
		if want := mustJSON(ev); !bytes.Equal(got, want) {
			t.Fatalf("case %d:\n got %.300s\nwant %.300s", i, got, want)
		}
	}
}

// BenchmarkImageEventJSON is a completed event for a 155 kB PNG (256x256), made by
// imageEvent.json and by encoding/json, alternated in every iteration.
func BenchmarkImageEventJSON(b *testing.B) {
	png := randomPNG(rand.New(rand.NewPCG(1, 2)), 155_000)
	ev := imageEvent{Type: "image_generation.completed", CreatedAt: 1, Size: "256x256", Quality: "auto",
		Background: "opaque", OutputFormat: "png", Usage: &imageUsage{}}
	var fast, std time.Duration
	for b.Loop() {
		t0 := time.Now()
		ev.json(png)
		t1 := time.Now()
		ref := ev
		ref.B64JSON = base64.StdEncoding.EncodeToString(png)
		mustJSON(ref)
		fast, std = fast+t1.Sub(t0), std+time.Since(t1)
	}
	b.ReportMetric(float64(fast.Nanoseconds())/float64(b.N), "splice-ns/op")
	b.ReportMetric(float64(std.Nanoseconds())/float64(b.N), "encoding-json-ns/op")
	b.ReportMetric(float64(fast)/float64(std), "ratio")
}

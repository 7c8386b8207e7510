package modelstore

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/genailab/genailab/pkg/ggufgen"
	"github.com/genailab/genailab/pkg/modelfile"
)

func TestMultiComponentReusesCompletedPart(t *testing.T) {
	fs := newFileServer(t)
	unet, vae, clip := randomBytes(500_000, 20), safetensorsBytes(120_000, 21), safetensorsBytes(80_000, 22)
	parts := []Part{
		{Component: ComponentDiffusionModel, URL: fs.add("/r/flux-q4.bin", unet), SHA256: sha(unet)},
		{Component: ComponentVAE, URL: fs.add("/r/ae.safetensors", vae), SHA256: sha(vae)},
		{Component: ComponentClipL, URL: fs.add("/r/clip_l.safetensors", clip)}, // no sum: reused by size
	}
	fs.set("/r/clip_l.safetensors", func(f *served) { f.cutAfter = []int{1000} })
	s := newTestStore(t, TypeDiffusion, func(o *Options) { o.ProgressInterval = time.Nanosecond })
	req := Request{ID: "flux-small", Name: "Flux small", Parts: parts}
	if _, err := s.Download(t.Context(), req, nil); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("first attempt: %v", err)
	}
	// The diffusion model and VAE are complete; nothing of the clip exists.
	for _, n := range []string{"flux-q4.bin", "ae.safetensors"} {
		if !exists(s.path("flux-small", n)) {
			t.Fatalf("%s missing after the first attempt", n)
		}
	}
	if l, _ := s.List(t.Context()); len(l) != 0 {
		t.Fatal("incomplete model listed")
	}
	// A clip_l already present (copied in by hand) is reused too.
	if err := os.WriteFile(s.path("flux-small", "clip_l.safetensors"), clip, 0o644); err != nil {
		t.Fatal(err)
	}

	var events []Progress
	rec, err := s.Download(t.Context(), req, func(p Progress) { events = append(events, p) })
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/r/flux-q4.bin", "/r/ae.safetensors", "/r/clip_l.safetensors"} {
		want := 1
		if p == "/r/clip_l.safetensors" {
			want = 1 // the cut attempt only
		}
		if g := fs.seen(http.MethodGet, p); len(g) != want {
			t.Errorf("%s fetched %d times, want %d", p, len(g), want)
		}
	}
	total := int64(len(unet) + len(vae) + len(clip))
	if rec.Size() != total || len(rec.Files) != 3 || rec.Name != "Flux small" {
		t.Fatalf("record: %+v", rec)
	}
	comps := []string{rec.Files[0].Component, rec.Files[1].Component, rec.Files[2].Component}
	if fmt.Sprint(comps) != "[diffusion_model vae clip_l]" || rec.Files[2].SHA256 != sha(clip) {
		t.Fatalf("files: %+v", rec.Files)
	}
	if rec.MainFile().Name != "flux-q4.bin" || rec.GGUF != nil {
		t.Fatalf("main file %+v, gguf %+v (a .bin file has no GGUF metadata)", rec.MainFile(), rec.GGUF)
	}
	if left := onlyFiles(t, filepath.Join(s.Root(), "flux-small")); len(left) != 4 {
		t.Fatalf("model dir holds %v (want 3 files and the record, no partial)", left)
	}
	last := events[len(events)-1]
	if !last.Done || last.BytesDone != total || last.ComponentCount != 3 {
		t.Fatalf("final event %+v", last)
	}
	for _, e := range events {
		if e.BytesTotal != total {
			t.Fatalf("aggregate total %d, want %d", e.BytesTotal, total)
		}
	}
}

func TestDiffusionComponentRules(t *testing.T) {
	s := newTestStore(t, TypeDiffusion, nil)
	u := "http://127.0.0.1:1/x/"
	for name, parts := range map[string][]Part{
		"no main":        {{Component: ComponentVAE, URL: u + "vae.gguf"}},
		"both mains":     {{Component: ComponentModel, URL: u + "a.gguf"}, {Component: ComponentDiffusionModel, URL: u + "b.gguf"}},
		"twice":          {{Component: ComponentDiffusionModel, URL: u + "a.gguf"}, {Component: ComponentDiffusionModel, URL: u + "b.gguf"}},
		"unknown":        {{Component: ComponentModel, URL: u + "a.gguf"}, {Component: "lora", URL: u + "b.gguf"}},
		"same file name": {{Component: ComponentDiffusionModel, URL: u + "a.gguf"}, {Component: ComponentVAE, URL: "http://127.0.0.1:1/y/a.gguf"}},
	} {
		if _, err := s.Download(t.Context(), Request{ID: "x", Parts: parts}, nil); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestShardedGGUFIsOneModel(t *testing.T) {
	fs := newFileServer(t)
	var sums []string
	var total int64
	for i := 1; i <= 3; i++ {
		d := randomBytes(50_000+i, uint64(30+i))
		fs.add(fmt.Sprintf("/o/r/big-model-Q4-%05d-of-00003.gguf", i), d)
		sums = append(sums, "sha256:"+sha(d))
		total += int64(len(d))
	}
	s := newTestStore(t, TypeLLM, nil)
	// Ask with the second shard: all three come, in order.
	rec, err := s.Download(t.Context(), Request{Parts: []Part{{URL: fs.srv.URL + "/o/r/big-model-Q4-00002-of-00003.gguf",
		SHA256: sums[0] + "," + sums[1] + "," + sums[2]}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rec.ID != "big-model-q4" || len(rec.Files) != 3 || rec.Size() != total {
		t.Fatalf("record %+v", rec)
	}
	for i, f := range rec.Files {
		if want := fmt.Sprintf("big-model-Q4-%05d-of-00003.gguf", i+1); f.Name != want || f.Component != ComponentModel {
			t.Fatalf("file %d: %+v", i, f)
		}
	}
	if _, err := s.Download(t.Context(), Request{ID: "again", Parts: []Part{{URL: fs.srv.URL + "/o/r/big-model-Q4-00001-of-00003.gguf", SHA256: sums[0]}}}, nil); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("one sum for three shards: %v", err)
	}
}

func TestGGUFMetadataStored(t *testing.T) {
	cfg := ggufgen.Config{Seed: 7, Layers: 3, Dim: 128, Heads: 8, KVHeads: 2, FFN: 256, Context: 1024, Name: "tiny test llama"}
	var buf bytes.Buffer
	if _, err := ggufgen.Write(&buf, cfg); err != nil {
		t.Fatal(err)
	}
	fs := newFileServer(t)
	u := fs.add("/t/tiny.gguf", buf.Bytes())
	s := newTestStore(t, TypeLLM, nil)
	rec, err := s.Download(t.Context(), Request{Parts: []Part{{URL: u}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	g := rec.GGUF
	if g == nil {
		t.Fatalf("no GGUF metadata: %s", rec.GGUFError)
	}
	if g.Architecture != "llama" || g.Name != "tiny test llama" || g.BlockCount != 3 || g.EmbeddingLength != 128 ||
		g.HeadCount != 8 || g.HeadCountKV != 2 || g.ContextLength != 1024 || g.FeedForwardLength != 256 ||
		g.KeyLength != 16 || g.ValueLength != 16 || g.SplitCount != 1 || g.FileSize != uint64(buf.Len()) {
		t.Fatalf("metadata: %+v", g)
	}
	if g.ParameterCount == 0 || g.TensorDataSize == 0 || g.TensorDataSize >= g.FileSize || g.VocabSize != uint64(cfg.VocabSize()) {
		t.Fatalf("sizes: %+v", g)
	}
	// It survives the round trip through the record on disk.
	back, err := s.Get(t.Context(), rec.ID)
	if err != nil || *back.GGUF != *g {
		t.Fatalf("record on disk: %+v %v", back.GGUF, err)
	}
}

func TestDeleteInUseAndForce(t *testing.T) {
	fs := newFileServer(t)
	data := randomBytes(90_000, 40)
	u := fs.add("/d/used.gguf", data)
	inUse := true
	s := newTestStore(t, TypeLLM, func(o *Options) { o.InUse = func(id string) bool { return inUse && id == "used" } })
	if _, err := s.Download(t.Context(), Request{Parts: []Part{{URL: u}}}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(t.Context(), "used", false); !errors.Is(err, ErrInUse) {
		t.Fatalf("delete in use: %v", err)
	}
	if _, err := s.Get(t.Context(), "used"); err != nil {
		t.Fatalf("refused delete removed the model: %v", err)
	}
	freed, err := s.Delete(t.Context(), "used", true)
	if err != nil || freed < int64(len(data)) {
		t.Fatalf("forced delete: %d %v", freed, err)
	}
	if _, err := s.Get(t.Context(), "used"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
	if _, err := s.Delete(t.Context(), "used", false); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
	if e, _ := os.ReadDir(s.Root()); len(e) != 0 {
		t.Fatalf("store not empty: %v", e)
	}
}

func TestDeleteRemovesUnfinishedDownload(t *testing.T) {
	fs := newFileServer(t)
	const path = "/d/half.gguf"
	u := fs.add(path, randomBytes(100_000, 41))
	fs.set(path, func(f *served) { f.cutAfter = []int{30_000} })
	s := newTestStore(t, TypeLLM, nil)
	if _, err := s.Download(t.Context(), Request{Parts: []Part{{URL: u}}}, nil); !errors.Is(err, ErrInterrupted) {
		t.Fatal(err)
	}
	if freed, err := s.Delete(t.Context(), "half", false); err != nil || freed < 30_000 {
		t.Fatalf("delete partial: %d %v", freed, err)
	}
	if left := onlyFiles(t, s.dataDir); len(left) != 0 {
		t.Fatalf("left: %v", left)
	}
}

func TestVerifyDetectsChanges(t *testing.T) {
	fs := newFileServer(t)
	a, b := randomBytes(40_000, 50), randomBytes(30_000, 51)
	s := newTestStore(t, TypeDiffusion, nil)
	rec, err := s.Download(t.Context(), Request{ID: "v", Parts: []Part{
		{Component: ComponentModel, URL: fs.add("/v/m.bin", a)},
		{Component: ComponentVAE, URL: fs.add("/v/vae.bin", b)},
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := s.Verify(t.Context(), rec.ID)
	if err != nil || !rep.OK || len(rep.Files) != 2 {
		t.Fatalf("fresh verify: %+v %v", rep, err)
	}
	// Flip one byte of the model, remove the VAE.
	p := s.path("v", "m.bin")
	a[100] ^= 0xff
	os.WriteFile(p, a, 0o644)
	os.Remove(s.path("v", "vae.bin"))
	rep, err = s.Verify(t.Context(), rec.ID)
	if err != nil || rep.OK || rep.Files[0].OK || rep.Files[0].ActualSHA256 != sha(a) || !rep.Files[1].Missing {
		t.Fatalf("verify after damage: %+v %v", rep, err)
	}
	if _, err := s.Verify(t.Context(), "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("verify unknown: %v", err)
	}
}

func TestStorageUsageCountsEachFileOnce(t *testing.T) {
	fs := newFileServer(t)
	a := randomBytes(64_000, 60)
	s := newTestStore(t, TypeDiffusion, nil)
	for _, id := range []string{"one", "two"} {
		if _, err := s.Download(t.Context(), Request{ID: id, Parts: []Part{{URL: fs.add("/u/"+id+".bin", a)}}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	// Share the file of "one" with "two" by a hard link (what a reused part would be).
	if err := os.Remove(s.path("two", "two.bin")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(s.path("one", "one.bin"), s.path("two", "two.bin")); err != nil {
		t.Fatal(err)
	}
	u, err := s.StorageUsage(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if u.ModelCount != 2 || u.ModelBytes != int64(len(a)) || u.FreeBytes != 1<<40 {
		t.Fatalf("usage %+v: the linked file must count once", u)
	}
	// A partial download counts as partial, not as a model.
	os.MkdirAll(filepath.Join(s.Root(), "three"), 0o755)
	os.WriteFile(s.path("three", "x.gguf.partial"), make([]byte, 1234), 0o644)
	u, _ = s.StorageUsage(t.Context())
	if u.PartialBytes != 1234 || u.ModelCount != 2 || u.ModelBytes != int64(len(a)) {
		t.Fatalf("usage with partial: %+v", u)
	}
}

func TestOpenCleansLeftovers(t *testing.T) {
	s := newTestStore(t, TypeLLM, nil)
	os.MkdirAll(filepath.Join(s.Root(), deletingPrefix+"x-123", "x"), 0o755)
	os.WriteFile(filepath.Join(s.Root(), deletingPrefix+"x-123", "x", "f"), []byte("1"), 0o644)
	os.MkdirAll(filepath.Join(s.Root(), "m"), 0o755)
	os.WriteFile(filepath.Join(s.Root(), "m", tempPrefix+"model.json-1"), []byte("{"), 0o644)
	if _, err := Open(Options{DataDir: s.dataDir, Type: TypeLLM}); err != nil {
		t.Fatal(err)
	}
	if left := onlyFiles(t, s.dataDir); len(left) != 0 {
		t.Fatalf("left: %v", left)
	}
}

func TestProgressThrottle(t *testing.T) {
	now := time.Unix(0, 0)
	var events []Progress
	tr := newProgressTracker(func(p Progress) { events = append(events, p) }, func() time.Time { return now },
		100*time.Millisecond, "m", 1, 1, 1_000_000)
	tr.startFile(1, 0, ComponentModel, "f")
	for i := 0; i < 1000; i++ { // 1000 bytes per ms for one second
		now = now.Add(time.Millisecond)
		tr.add(1000)
	}
	tr.finish(nil)
	// One report at the start and one per 100 ms after it, then the final one.
	if len(events) != 11 {
		t.Fatalf("%d events in one second at 100 ms", len(events))
	}
	for i := 1; i < len(events)-1; i++ {
		if r := events[i].BytesPerSecond; r < 0.99e6 || r > 1.01e6 {
			t.Fatalf("event %d rate %.0f, want 1e6", i, r)
		}
	}
	mid := events[5]
	wantETA := time.Duration(float64(mid.BytesTotal-mid.BytesDone) / 1e6 * float64(time.Second))
	if d := mid.ETA - wantETA; d < -time.Millisecond || d > time.Millisecond {
		t.Fatalf("ETA %v, want %v", mid.ETA, wantETA)
	}
	if !events[10].Done || events[10].ETA != 0 {
		t.Fatalf("final %+v", events[10])
	}
}

func TestPresetsAreDownloadable(t *testing.T) {
	if len(Presets(TypeLLM)) < 2 || len(Presets(TypeDiffusion)) < 2 {
		t.Fatal("catalog too small")
	}
	stores := map[Type]*testStore{TypeLLM: newTestStore(t, TypeLLM, nil), TypeDiffusion: newTestStore(t, TypeDiffusion, nil)}
	seen := map[string]bool{}
	for _, p := range Presets("") {
		if err := ValidateID(p.ID); err != nil || seen[p.ID] {
			t.Errorf("preset id %q: %v (dup %v)", p.ID, err, seen[p.ID])
		}
		seen[p.ID] = true
		var sum int64
		for _, part := range p.Parts {
			sum += part.SizeBytes
			if part.HF.Revision == "" {
				t.Errorf("%s: unpinned revision", p.ID)
			}
		}
		if sum != p.SizeBytes || p.SizeBytes == 0 {
			t.Errorf("%s: size %d, parts sum %d", p.ID, p.SizeBytes, sum)
		}
		if (p.Type == TypeLLM) != (p.LLM != nil) || (p.Type == TypeDiffusion) != (p.Diffusion != nil) {
			t.Errorf("%s: settings do not match type", p.ID)
		}
		jobs, id, err := stores[p.Type].plan(p.Request())
		if err != nil || id != p.ID || len(jobs) != len(p.Parts) {
			t.Errorf("%s: plan: %v %q %d", p.ID, err, id, len(jobs))
		}
		if got, ok := PresetByID(p.ID); !ok || got.Name != p.Name {
			t.Errorf("PresetByID(%s)", p.ID)
		}
	}
}

// Regression: random bytes downloaded as a diffusion model's .gguf were installed (with only a
// gguf_error in the record); the engine then aborted on them. The download is refused and its
// files are removed.
func TestDownloadRefusesADiffusionModelThatIsNotWhole(t *testing.T) {
	fs := newFileServer(t)
	junk := randomBytes(50_000, 70)
	s := newTestStore(t, TypeDiffusion, nil)
	_, err := s.Download(t.Context(), Request{ID: "junk", Parts: []Part{{URL: fs.add("/j/junk.gguf", junk)}}}, nil)
	if !errors.Is(err, modelfile.ErrInvalid) {
		t.Fatalf("download of random bytes as .gguf: %v", err)
	}
	if exists(s.path("junk", "junk.gguf")) {
		t.Error("the refused file is still in the store")
	}
	if l, _ := s.List(t.Context()); len(l) != 0 {
		t.Errorf("refused model listed: %v", l)
	}
}

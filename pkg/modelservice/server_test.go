package modelservice

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	modelsv1 "github.com/genailab/genailab/gen/models/v1"
	"github.com/genailab/genailab/pkg/ggufgen"
	"github.com/genailab/genailab/pkg/modelstore"
)

// origin is a small real HTTP file server with Range/If-Range support that
// records the Range header of every GET and can hold a body half-way.
type origin struct {
	srv    *httptest.Server
	mu     sync.Mutex
	files  map[string][]byte
	ranges map[string][]string
	hold   map[string]chan struct{} // closed by the test, or the request ends
}

func newOrigin(t testing.TB) *origin {
	o := &origin{files: map[string][]byte{}, ranges: map[string][]string{}, hold: map[string]chan struct{}{}}
	o.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		data, ok := o.files[r.URL.Path]
		hold := o.hold[r.URL.Path]
		if r.Method == http.MethodGet {
			o.ranges[r.URL.Path] = append(o.ranges[r.URL.Path], r.Header.Get("Range"))
		}
		o.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		etag := `"` + sum(data)[:12] + `"`
		w.Header().Set("ETag", etag)
		start, code := 0, http.StatusOK
		if rg := r.Header.Get("Range"); rg != "" && r.Header.Get("If-Range") == etag {
			start, _ = strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(rg, "bytes="), "-"))
			code = http.StatusPartialContent
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(data)-1, len(data)))
		}
		body := data[start:]
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(code)
		if r.Method == http.MethodHead {
			return
		}
		if hold != nil {
			w.Write(body[:len(body)/2])
			w.(http.Flusher).Flush()
			select {
			case <-hold:
			case <-r.Context().Done():
				return
			}
			body = body[len(body)/2:]
		}
		w.Write(body)
	}))
	t.Cleanup(o.srv.Close)
	return o
}

func (o *origin) add(path string, data []byte) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.files[path] = data
	return o.srv.URL + path
}

func (o *origin) gets(path string) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.ranges[path]...)
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func tinyGGUF(t testing.TB) []byte {
	t.Helper()
	var b bytes.Buffer
	if _, err := ggufgen.Write(&b, ggufgen.Config{Seed: 3, Layers: 2, Dim: 64, Heads: 4, KVHeads: 2, Context: 512}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

type fixture struct {
	client  modelsv1.ModelServiceClient
	store   *modelstore.Store
	inUse   *atomic.Bool
	dataDir string
}

// serve starts the service on a real loopback socket and returns a client.
func serve(t testing.TB, typ modelstore.Type, mod func(*modelstore.Options)) *fixture {
	t.Helper()
	inUse := &atomic.Bool{}
	o := modelstore.Options{
		DataDir:   t.TempDir(),
		Type:      typ,
		Retries:   -1,
		FreeSpace: func(string) (uint64, error) { return 1 << 40, nil },
		InUse:     func(string) bool { return inUse.Load() },
	}
	if mod != nil {
		mod(&o)
	}
	st, err := modelstore.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	New(st, nil).Register(gs)
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &fixture{client: modelsv1.NewModelServiceClient(conn), store: st, inUse: inUse, dataDir: o.DataDir}
}

// download runs a DownloadModel stream to its end.
func download(ctx context.Context, c modelsv1.ModelServiceClient, req *modelsv1.DownloadModelRequest) ([]*modelsv1.DownloadProgress, *modelsv1.Model, error) {
	stream, err := c.DownloadModel(ctx, req)
	if err != nil {
		return nil, nil, err
	}
	var progress []*modelsv1.DownloadProgress
	var model *modelsv1.Model
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return progress, model, nil
		}
		if err != nil {
			return progress, model, err
		}
		if model != nil {
			return progress, model, fmt.Errorf("message after the model: %v", msg)
		}
		switch e := msg.GetEvent().(type) {
		case *modelsv1.DownloadModelResponse_Progress:
			progress = append(progress, e.Progress)
		case *modelsv1.DownloadModelResponse_Model:
			model = e.Model
		}
	}
}

func code(err error) codes.Code { return status.Code(err) }

const llm = modelsv1.ModelType_MODEL_TYPE_LLM
const diffusion = modelsv1.ModelType_MODEL_TYPE_DIFFUSION

func TestLifecycleOverGRPC(t *testing.T) {
	org := newOrigin(t)
	data := tinyGGUF(t)
	u := org.add("/m/tiny-llama.gguf", data)
	f := serve(t, modelstore.TypeLLM, nil)
	ctx := t.Context()

	progress, m, err := download(ctx, f.client, &modelsv1.DownloadModelRequest{
		Type: llm, Name: "Tiny", Source: &modelsv1.ModelSource{Source: &modelsv1.ModelSource_Url{Url: u}, Sha256: "sha256:" + sum(data)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(progress) == 0 || m == nil {
		t.Fatalf("progress %d, model %v", len(progress), m)
	}
	p := progress[0]
	if p.ModelId != "tiny" || p.DownloadId != "tiny" || p.TotalBytes != uint64(len(data)) || p.Component != "model" || p.ComponentCount != 1 {
		t.Fatalf("progress: %v", p)
	}
	if m.Id != "tiny" || m.Name != "Tiny" || m.Type != llm || m.SizeBytes != uint64(len(data)) || len(m.Files) != 1 ||
		m.Files[0].Sha256 != sum(data) || m.SourceUrl != u || m.DownloadedAt == nil {
		t.Fatalf("model: %v", m)
	}
	if g := m.Gguf; g == nil || g.Architecture != "llama" || g.BlockCount != 2 || g.HeadCountKv != 2 || g.ContextLength != 512 || g.ShardCount != 1 || g.ParameterCount == 0 {
		t.Fatalf("gguf: %v", m.Gguf)
	}

	list, err := f.client.ListModels(ctx, &modelsv1.ListModelsRequest{Type: llm})
	if err != nil || len(list.Models) != 1 || list.Models[0].Id != "tiny" {
		t.Fatalf("list: %v %v", list, err)
	}
	got, err := f.client.GetModel(ctx, &modelsv1.GetModelRequest{Type: llm, Id: "tiny"})
	if err != nil || got.Model.Files[0].Name != "tiny-llama.gguf" {
		t.Fatalf("get: %v %v", got, err)
	}
	ver, err := f.client.VerifyModel(ctx, &modelsv1.VerifyModelRequest{Type: llm, Id: "tiny"})
	if err != nil || !ver.Ok || !ver.Files[0].Ok || ver.Files[0].Problem != "" {
		t.Fatalf("verify: %v %v", ver, err)
	}
	use, err := f.client.GetStorageUsage(ctx, &modelsv1.GetStorageUsageRequest{Type: llm})
	if err != nil || use.UsedBytes != uint64(len(data)) || use.FreeBytes != 1<<40 || len(use.Models) != 1 {
		t.Fatalf("usage: %v %v", use, err)
	}

	// Damage the file: VerifyModel says so.
	path := filepath.Join(f.store.Root(), "tiny", "tiny-llama.gguf")
	os.WriteFile(path, data[:len(data)-1], 0o644)
	ver, err = f.client.VerifyModel(ctx, &modelsv1.VerifyModelRequest{Type: llm, Id: "tiny"})
	if err != nil || ver.Ok || !strings.Contains(ver.Files[0].Problem, "size") {
		t.Fatalf("verify damaged: %v %v", ver, err)
	}

	f.inUse.Store(true)
	if g, _ := f.client.GetModel(ctx, &modelsv1.GetModelRequest{Id: "tiny"}); !g.GetModel().GetInUse() {
		t.Fatal("in_use not reported")
	}
	if _, err := f.client.DeleteModel(ctx, &modelsv1.DeleteModelRequest{Type: llm, Id: "tiny"}); code(err) != codes.FailedPrecondition {
		t.Fatalf("delete in use: %v", err)
	}
	del, err := f.client.DeleteModel(ctx, &modelsv1.DeleteModelRequest{Type: llm, Id: "tiny", Force: true})
	if err != nil || del.FreedBytes < uint64(len(data)-1) {
		t.Fatalf("forced delete: %v %v", del, err)
	}
	if _, err := f.client.GetModel(ctx, &modelsv1.GetModelRequest{Type: llm, Id: "tiny"}); code(err) != codes.NotFound {
		t.Fatalf("get after delete: %v", err)
	}
}

func TestErrorCodesOverGRPC(t *testing.T) {
	org := newOrigin(t)
	data := tinyGGUF(t)
	u := org.add("/m/e.gguf", data)
	src := func(url, sha string) *modelsv1.ModelSource {
		return &modelsv1.ModelSource{Source: &modelsv1.ModelSource_Url{Url: url}, Sha256: sha}
	}
	free := &atomic.Uint64{}
	free.Store(1 << 40)
	f := serve(t, modelstore.TypeLLM, func(o *modelstore.Options) {
		o.FreeSpace = func(string) (uint64, error) { return free.Load(), nil }
	})
	ctx := t.Context()
	cases := []struct {
		name string
		req  *modelsv1.DownloadModelRequest
		want codes.Code
	}{
		{"bad id", &modelsv1.DownloadModelRequest{Type: llm, Id: "../x", Source: src(u, "")}, codes.InvalidArgument},
		{"traversal name", &modelsv1.DownloadModelRequest{Type: llm, Source: src(org.srv.URL+"/m/..%2f..%2fx.gguf", "")}, codes.InvalidArgument},
		{"file url", &modelsv1.DownloadModelRequest{Type: llm, Source: src("file:///etc/passwd", "")}, codes.InvalidArgument},
		{"wrong type", &modelsv1.DownloadModelRequest{Type: diffusion, Source: src(u, "")}, codes.InvalidArgument},
		{"no source", &modelsv1.DownloadModelRequest{Type: llm}, codes.InvalidArgument},
		{"two sources", &modelsv1.DownloadModelRequest{Type: llm, Source: src(u, ""), PresetId: "x"}, codes.InvalidArgument},
		{"unknown preset", &modelsv1.DownloadModelRequest{Type: llm, PresetId: "nope"}, codes.NotFound},
		{"diffusion preset", &modelsv1.DownloadModelRequest{Type: llm, PresetId: "flux.1-schnell-q4_k"}, codes.InvalidArgument},
		{"missing source", &modelsv1.DownloadModelRequest{Type: llm, Source: src(org.srv.URL+"/m/missing.gguf", "")}, codes.NotFound},
		{"checksum", &modelsv1.DownloadModelRequest{Type: llm, Id: "c", Source: src(u, strings.Repeat("0", 64))}, codes.DataLoss},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, _, err := download(ctx, f.client, c.req); code(err) != c.want {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
	free.Store(100)
	if _, _, err := download(ctx, f.client, &modelsv1.DownloadModelRequest{Type: llm, Source: src(u, "")}); code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "disk space") {
		t.Fatalf("disk space: %v", err)
	}
	free.Store(1 << 40)
	if _, _, err := download(ctx, f.client, &modelsv1.DownloadModelRequest{Type: llm, Source: src(u, "")}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := download(ctx, f.client, &modelsv1.DownloadModelRequest{Type: llm, Source: src(u, "")}); code(err) != codes.AlreadyExists {
		t.Fatalf("again: %v", err)
	}
	if len(org.gets("/m/e.gguf")) != 2 { // the checksum attempt and the good one
		t.Fatalf("GETs: %v", org.gets("/m/e.gguf"))
	}
	for _, c := range []struct {
		err  error
		want codes.Code
	}{
		{func() error { _, err := f.client.ListModels(ctx, &modelsv1.ListModelsRequest{}); return err }(), codes.InvalidArgument},
		{func() error {
			_, err := f.client.ListModels(ctx, &modelsv1.ListModelsRequest{Type: diffusion})
			return err
		}(), codes.InvalidArgument},
		{func() error { _, err := f.client.GetModel(ctx, &modelsv1.GetModelRequest{Id: "A/b"}); return err }(), codes.InvalidArgument},
		{func() error { _, err := f.client.GetModel(ctx, &modelsv1.GetModelRequest{Id: "nope"}); return err }(), codes.NotFound},
		{func() error {
			_, err := f.client.DeleteModel(ctx, &modelsv1.DeleteModelRequest{Id: "nope"})
			return err
		}(), codes.NotFound},
		{func() error { _, err := f.client.VerifyModel(ctx, &modelsv1.VerifyModelRequest{Id: ".."}); return err }(), codes.InvalidArgument},
	} {
		if code(c.err) != c.want {
			t.Errorf("got %v, want %v", c.err, c.want)
		}
	}
	if left, _ := os.ReadDir(f.store.Root()); len(left) != 1 {
		t.Fatalf("store holds %v, want only the one good model", left)
	}
}

func TestCancelAndResumeOverGRPC(t *testing.T) {
	org := newOrigin(t)
	data := bytes.Repeat([]byte("0123456789abcdef"), 40_000)
	const path = "/m/big.gguf"
	u := org.add(path, data)
	release := make(chan struct{})
	org.mu.Lock()
	org.hold[path] = release
	org.mu.Unlock()
	f := serve(t, modelstore.TypeLLM, nil)
	ctx := t.Context()

	stream, err := f.client.DownloadModel(ctx, &modelsv1.DownloadModelRequest{Type: llm, Source: &modelsv1.ModelSource{Source: &modelsv1.ModelSource_Url{Url: u}}})
	if err != nil {
		t.Fatal(err)
	}
	first, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	id := first.GetProgress().GetDownloadId()
	if id != "big" {
		t.Fatalf("first message %v", first)
	}
	// A second download of the same model is refused while this one runs.
	if _, _, err := download(ctx, f.client, &modelsv1.DownloadModelRequest{Type: llm, Source: &modelsv1.ModelSource{Source: &modelsv1.ModelSource_Url{Url: u}}}); code(err) != codes.Aborted {
		t.Fatalf("concurrent download: %v", err)
	}
	// Wait until half the file is on disk, then cancel.
	partial := filepath.Join(f.store.Root(), "big", "big.gguf.partial")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if fi, err := os.Stat(partial); err == nil && fi.Size() == int64(len(data)/2) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("half the file never reached the disk")
		}
		time.Sleep(2 * time.Millisecond)
	}
	c, err := f.client.CancelDownload(ctx, &modelsv1.CancelDownloadRequest{Type: llm, DownloadId: id})
	if err != nil || !c.Cancelled {
		t.Fatalf("cancel: %v %v", c, err)
	}
	for {
		_, err := stream.Recv()
		if err == nil {
			continue
		}
		if code(err) != codes.Canceled {
			t.Fatalf("stream ended with %v, want Canceled", err)
		}
		break
	}
	if _, err := os.Stat(partial); err != nil {
		t.Fatalf("partial gone after cancel: %v", err)
	}
	c, err = f.client.CancelDownload(ctx, &modelsv1.CancelDownloadRequest{Type: llm, DownloadId: id})
	if err != nil || c.Cancelled {
		t.Fatalf("cancel with nothing running: %v %v", c, err)
	}
	close(release)
	org.mu.Lock()
	delete(org.hold, path)
	org.mu.Unlock()
	_, m, err := download(ctx, f.client, &modelsv1.DownloadModelRequest{Type: llm, Source: &modelsv1.ModelSource{Source: &modelsv1.ModelSource_Url{Url: u}, Sha256: sum(data)}})
	if err != nil || m.SizeBytes != uint64(len(data)) {
		t.Fatalf("resume: %v %v", m, err)
	}
	gets := org.gets(path)
	if last := gets[len(gets)-1]; last != fmt.Sprintf("bytes=%d-", len(data)/2) {
		t.Fatalf("resume asked %q (all: %v)", last, gets)
	}
}

func TestPresetMultiComponentOverGRPC(t *testing.T) {
	org := newOrigin(t)
	p, ok := modelstore.PresetByID("flux.1-schnell-q4_k")
	if !ok {
		t.Fatal("flux preset missing")
	}
	var total int
	for i, part := range p.Parts {
		d := wholeModelFile(t, part.HF.File, 10_000*(i+1), byte(i+1))
		total += len(d)
		org.add("/"+part.HF.Repo+"/resolve/"+part.HF.Revision+"/"+part.HF.File, d)
	}
	f := serve(t, modelstore.TypeDiffusion, func(o *modelstore.Options) { o.HFBaseURL = org.srv.URL })
	ctx := t.Context()

	presets, err := f.client.ListPresets(ctx, &modelsv1.ListPresetsRequest{Type: diffusion})
	if err != nil || len(presets.Presets) < 2 {
		t.Fatalf("presets: %v %v", presets, err)
	}
	var flux *modelsv1.Preset
	for _, pr := range presets.Presets {
		if pr.Type != diffusion {
			t.Fatalf("preset of another type: %v", pr)
		}
		if pr.Id == p.ID {
			flux = pr
		}
	}
	if flux == nil || len(flux.Components) != 4 || flux.Recommended["steps"] != "4" || flux.Recommended["cfg_scale"] != "1" ||
		flux.Components[0].Component != "diffusion_model" || flux.Components[0].Source.GetHuggingFace().GetRepo() != "Green-Sky/flux.1-schnell-GGUF" {
		t.Fatalf("flux preset: %v", flux)
	}

	progress, m, err := download(ctx, f.client, &modelsv1.DownloadModelRequest{Type: diffusion, PresetId: p.ID})
	if err != nil {
		t.Fatal(err)
	}
	if m.Id != p.ID || m.PresetId != p.ID || m.Name != p.Name || len(m.Files) != 4 || m.SizeBytes != uint64(total) {
		t.Fatalf("model: %v", m)
	}
	for i, want := range []string{"diffusion_model", "vae", "clip_l", "t5xxl"} {
		if m.Files[i].Component != want {
			t.Fatalf("file %d: %v", i, m.Files[i])
		}
	}
	last := progress[len(progress)-1]
	if last.ComponentCount != 4 || last.TotalBytes != uint64(total) {
		t.Fatalf("last progress: %v", last)
	}
	// Explicit components: a lone diffusion_model is a model; parts without one are refused.
	var comps []*modelsv1.ComponentSource
	for _, c := range flux.Components {
		hf := c.Source.GetHuggingFace()
		comps = append(comps, &modelsv1.ComponentSource{Component: c.Component, Source: &modelsv1.ModelSource{
			Source: &modelsv1.ModelSource_Url{Url: org.srv.URL + "/" + hf.Repo + "/resolve/" + hf.Revision + "/" + hf.File},
		}})
	}
	if _, err := f.client.DeleteModel(ctx, &modelsv1.DeleteModelRequest{Type: diffusion, Id: p.ID}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := download(ctx, f.client, &modelsv1.DownloadModelRequest{Type: diffusion, Id: "flux-again", Components: comps[:1]}); code(err) != codes.OK {
		t.Fatalf("one component: %v", err)
	}
	if _, _, err := download(ctx, f.client, &modelsv1.DownloadModelRequest{Type: diffusion, Id: "bad", Components: comps[1:]}); code(err) != codes.InvalidArgument {
		t.Fatalf("no diffusion model component: %v", err)
	}
}

// wholeModelFile is a file of about n bytes that passes the store's check of diffusion model
// files (modelfile.Check): a GGUF made by ggufgen for .gguf names, a one-tensor safetensors file
// filled with fill otherwise.
func wholeModelFile(t *testing.T, name string, n int, fill byte) []byte {
	t.Helper()
	if strings.HasSuffix(name, ".gguf") {
		var buf bytes.Buffer
		if _, err := ggufgen.Write(&buf, ggufgen.DefaultConfig()); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	hdr := fmt.Sprintf(`{"t":{"dtype":"U8","shape":[%d],"data_offsets":[0,%d]}}`, n, n)
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(hdr)))
	b = append(b, hdr...)
	return append(b, bytes.Repeat([]byte{fill}, n)...)
}

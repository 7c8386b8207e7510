package modelservice

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	modelsv1 "github.com/genailab/genailab/gen/models/v1"
	"github.com/genailab/genailab/pkg/grpcerr"
	"github.com/genailab/genailab/pkg/modelstore"
)

// Issue 14's fault suite, the model stores' gRPC edge (ids, file names, source URLs): the
// requests of every ModelService method, decoded from fuzz bytes, go over loopback gRPC to a
// real store holding one model, whose every download reaches a real local HTTP origin
// (whatever host the URL names). A refused request is InvalidArgument with a reason, no
// answer is an internal error, and nothing outside the store's data directory is read,
// written or removed: a file next to it stays as it was, and no Verify names a file
// outside. The corpus is in testdata/fuzz.
func FuzzModelRequests(f *testing.F) {
	add := func(method byte, m proto.Message) {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(append([]byte{method}, b...))
	}
	src := func(u string) *modelsv1.ModelSource {
		return &modelsv1.ModelSource{Source: &modelsv1.ModelSource_Url{Url: u}}
	}
	for _, id := range []string{"tiny", "", "..", "../outside", "tiny/../../outside", "Tiny", "tiny\x00", strings.Repeat("a", 129), "/etc/passwd", "a..b"} {
		add(0, &modelsv1.GetModelRequest{Id: id})
		add(1, &modelsv1.VerifyModelRequest{Id: id})
		add(2, &modelsv1.DeleteModelRequest{Id: id})
		add(3, &modelsv1.CancelDownloadRequest{DownloadId: id})
	}
	add(0, &modelsv1.GetModelRequest{Id: "tiny", Type: modelsv1.ModelType_MODEL_TYPE_DIFFUSION})
	add(4, &modelsv1.DownloadModelRequest{Id: "new", Source: src("http://origin/m/tiny.gguf")})
	add(4, &modelsv1.DownloadModelRequest{Source: src("http://origin/m/..%2F..%2Foutside%2Fsecret")})
	add(4, &modelsv1.DownloadModelRequest{Source: src("http://origin/m/model.json")})
	add(4, &modelsv1.DownloadModelRequest{Source: src("http://origin/m/x.gguf.partial")})
	add(4, &modelsv1.DownloadModelRequest{Source: src("file:///etc/passwd")})
	add(4, &modelsv1.DownloadModelRequest{Source: src("http://user:pw@origin/m/x.gguf")})
	add(4, &modelsv1.DownloadModelRequest{Source: src("http://origin/%ff.gguf")})
	add(4, &modelsv1.DownloadModelRequest{Id: "../x", Source: src("http://origin/m/x.gguf")})
	add(4, &modelsv1.DownloadModelRequest{PresetId: "nope"})
	add(4, &modelsv1.DownloadModelRequest{})
	add(4, &modelsv1.DownloadModelRequest{Components: []*modelsv1.ComponentSource{{Component: "vae", Source: src("http://origin/m/v.gguf")}}})
	add(5, &modelsv1.ListModelsRequest{Type: modelsv1.ModelType_MODEL_TYPE_LLM})
	add(5, &modelsv1.GetStorageUsageRequest{})

	o := newOrigin(f)
	data := tinyGGUF(f)
	o.add("/m/tiny.gguf", data)
	originAddr := strings.TrimPrefix(o.srv.URL, "http://")
	fx := serve(f, modelstore.TypeLLM, func(opts *modelstore.Options) {
		opts.HTTPClient = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, originAddr)
			},
		}}
		opts.HFBaseURL = o.srv.URL
	})
	if _, err := fx.store.Import(context.Background(), "tiny", "tiny", writeTemp(f, data)); err != nil {
		f.Fatal(err)
	}
	// A file next to the store, as a secret of the machine would be.
	outside := filepath.Join(filepath.Dir(fx.dataDir), "outside")
	if err := os.MkdirAll(outside, 0o755); err != nil {
		f.Fatal(err)
	}
	secret := filepath.Join(outside, "secret")
	if err := os.WriteFile(secret, []byte("do not touch"), 0o600); err != nil {
		f.Fatal(err)
	}

	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		var err error
		method, wire := in[0]%6, in[1:]
		switch method {
		case 0:
			var r modelsv1.GetModelRequest
			if proto.Unmarshal(wire, &r) != nil {
				return
			}
			_, err = fx.client.GetModel(ctx, &r)
		case 1:
			var r modelsv1.VerifyModelRequest
			if proto.Unmarshal(wire, &r) != nil {
				return
			}
			var res *modelsv1.VerifyModelResponse
			res, err = fx.client.VerifyModel(ctx, &r)
			for _, fc := range res.GetFiles() {
				if strings.ContainsAny(fc.GetName(), `/\`) || strings.HasPrefix(fc.GetName(), ".") {
					t.Fatalf("Verify names a file outside its model: %q", fc.GetName())
				}
			}
		case 2:
			var r modelsv1.DeleteModelRequest
			if proto.Unmarshal(wire, &r) != nil {
				return
			}
			_, err = fx.client.DeleteModel(ctx, &r)
		case 3:
			var r modelsv1.CancelDownloadRequest
			if proto.Unmarshal(wire, &r) != nil {
				return
			}
			_, err = fx.client.CancelDownload(ctx, &r)
		case 4:
			var r modelsv1.DownloadModelRequest
			if proto.Unmarshal(wire, &r) != nil {
				return
			}
			_, _, err = download(ctx, fx.client, &r)
		case 5:
			var r modelsv1.ListModelsRequest
			if proto.Unmarshal(wire, &r) != nil {
				return
			}
			_, err = fx.client.ListModels(ctx, &r)
			if err == nil {
				_, err = fx.client.GetStorageUsage(ctx, &modelsv1.GetStorageUsageRequest{Type: r.GetType()})
			}
		}
		if err != nil {
			st, _ := status.FromError(err)
			switch st.Code() {
			case codes.InvalidArgument:
				if strings.TrimSpace(st.Message()) == "" || grpcerr.Reason(err) == "" {
					t.Fatalf("method %d: refusal without a reason: %v", method, err)
				}
			case codes.NotFound, codes.AlreadyExists, codes.FailedPrecondition, codes.Aborted,
				codes.Unavailable, codes.PermissionDenied, codes.DataLoss:
				if strings.TrimSpace(st.Message()) == "" {
					t.Fatalf("method %d: %v without a message", method, st.Code())
				}
			default:
				t.Fatalf("method %d: %v", method, err)
			}
		}
		if b, err := os.ReadFile(secret); err != nil || !bytes.Equal(b, []byte("do not touch")) {
			t.Fatalf("the file next to the store: %q, %v", b, err)
		}
		if ents, _ := os.ReadDir(outside); len(ents) != 1 {
			t.Fatalf("the directory next to the store holds %d entries", len(ents))
		}
	})
}

// writeTemp writes data to a file of its own and returns the path.
func writeTemp(t testing.TB, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tiny.gguf")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

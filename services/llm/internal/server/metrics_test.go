package server_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	"github.com/genailab/genailab/pkg/ggufgen"
	"github.com/genailab/genailab/pkg/grpcserver"
	"github.com/genailab/genailab/pkg/metricsserver"
	"github.com/genailab/genailab/pkg/metricsserver/metricstest"
	"github.com/genailab/genailab/pkg/modelstore"
	"github.com/genailab/genailab/services/llm/internal/server"
)

// A chat through a real llama-server shows on the service's /metrics: the chat's
// request, tokens and time to first token by model, the engine up, and llama-server's
// own series (it runs with --metrics) re-exported with host and model labels; the
// exposition's shape is the golden file's.
func TestMetricsOfAChat(t *testing.T) {
	bin := llamaServer(t)
	dataDir := t.TempDir()
	store, err := modelstore.Open(modelstore.Options{DataDir: dataDir, Type: modelstore.TypeLLM})
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "tiny.gguf")
	if err := ggufgen.WriteFile(src, tinyModel()); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Import(context.Background(), tinyID, "", src); err != nil {
		t.Fatal(err)
	}
	addrFile, metricsFile := filepath.Join(t.TempDir(), "addr"), filepath.Join(t.TempDir(), "metrics.addr")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- server.Run(ctx, server.Options{
			GRPC: grpcserver.Flags{Addr: "127.0.0.1:0", AddrFile: addrFile}, DataDir: dataDir, LlamaServer: bin,
			TermGrace: 500 * time.Millisecond, Logger: testLogger(),
			Metrics: metricsserver.Options{Addr: "127.0.0.1:0", AddrFile: metricsFile},
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		assertNoEngines(t, dataDir)
	})
	conn, err := grpc.NewClient(waitAddr(t, addrFile, done), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	llm := llmv1.NewLLMServiceClient(conn)
	if _, err := llm.Start(ctxTimeout(t, 60*time.Second), &llmv1.StartRequest{Config: &llmv1.LLMConfig{ModelId: tinyID}}); err != nil {
		t.Fatal(err)
	}
	stream, err := llm.Chat(ctxTimeout(t, 60*time.Second), userChat("hello", 8))
	if err != nil {
		t.Fatal(err)
	}
	if r := recvChat(stream, chatResult{}); r.err != nil {
		t.Fatal(r.err)
	}
	metricsAddr, err := os.ReadFile(metricsFile)
	if err != nil {
		t.Fatal(err)
	}
	// llama-server's own families (llamacpp:*) follow its version: their presence is
	// checked below, not their shape.
	fams := metricstest.Golden(t, "http://"+strings.TrimSpace(string(metricsAddr))+"/metrics", filepath.Join("testdata", "metrics.golden"), "llamacpp:")
	host, _ := os.Hostname()
	model := map[string]string{"model": tinyID}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"genailab_llm_chat_requests_total", map[string]string{"model": tinyID, "outcome": "ok"}, 1},
		{"genailab_llm_chat_time_to_first_token_seconds", model, 1},
		{"genailab_llm_chat_duration_seconds", map[string]string{"model": tinyID, "outcome": "ok"}, 1},
		{"genailab_llm_engine_up", model, 1},
		{"genailab_llm_engine_offloaded", nil, 0},
		{"genailab_scrape_collector_success", map[string]string{"collector": "llama-server"}, 1},
		{"genailab_scrape_collector_success", map[string]string{"collector": "engine"}, 1},
		{"llamacpp:requests_processing", map[string]string{"host": host, "model": tinyID}, 0},
	} {
		if got := metricstest.Value(t, fams, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if got := metricstest.Value(t, fams, "genailab_llm_chat_tokens_total", map[string]string{"model": tinyID, "kind": "completion"}); got < 1 {
		t.Errorf("completion tokens %v, want at least 1", got)
	}
	if got := metricstest.Value(t, fams, "llamacpp:prompt_tokens_total", map[string]string{"host": host, "model": tinyID}); got < 1 {
		t.Errorf("llama-server's prompt tokens %v, want at least 1", got)
	}
}

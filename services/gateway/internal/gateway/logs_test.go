package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"google.golang.org/grpc"

	commonv1 "github.com/genailab/genailab/gen/common/v1"
	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	"github.com/genailab/genailab/pkg/grpcserver"
	"github.com/genailab/genailab/pkg/logring"
	"github.com/genailab/genailab/pkg/logstream"
	"github.com/genailab/genailab/services/gateway/internal/gateway"
)

// llmLogs and diffusionLogs are an LLM and a diffusion service whose StreamLogs are the
// services' own (package logstream) over a log of 300 lines.
type llmLogs struct {
	llmv1.UnimplementedLLMServiceServer
	src logstream.Source[string]
}

func (l *llmLogs) StreamLogs(req *llmv1.StreamLogsRequest, s grpc.ServerStreamingServer[llmv1.StreamLogsResponse]) error {
	return logstream.Stream(s.Context(), l.src, &commonv1.StreamLogsRequest{TailLines: req.TailLines, Follow: req.GetFollow()},
		func(m *commonv1.StreamLogsResponse) error {
			return s.Send(&llmv1.StreamLogsResponse{Line: m.GetLine()})
		})
}

type diffusionLogs struct {
	diffusionv1.UnimplementedDiffusionServiceServer
	src logstream.Source[string]
}

func (d *diffusionLogs) StreamLogs(req *diffusionv1.StreamLogsRequest, s grpc.ServerStreamingServer[diffusionv1.StreamLogsResponse]) error {
	return logstream.Stream(s.Context(), d.src, &commonv1.StreamLogsRequest{TailLines: req.TailLines, Follow: req.GetFollow()},
		func(m *commonv1.StreamLogsResponse) error {
			return s.Send(&diffusionv1.StreamLogsResponse{Line: m.GetLine()})
		})
}

func startLogsGateway(t *testing.T) string {
	t.Helper()
	ring := logring.New[string](1000)
	for i := range 300 {
		ring.Append(fmt.Sprintf("line %d", i))
	}
	src := logstream.Source[string]{Subscribe: ring.Subscribe,
		Line: func(v string, seq uint64) *commonv1.LogLine { return &commonv1.LogLine{Raw: v, Seq: seq} }}
	s, err := grpcserver.Listen(grpcserver.Options{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	llmv1.RegisterLLMServiceServer(s.GRPC(), &llmLogs{src: src})
	diffusionv1.RegisterDiffusionServiceServer(s.GRPC(), &diffusionLogs{src: src})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	g, err := gateway.New(ctx, gateway.Options{Backends: gateway.Backends{LLM: s.Addr(), Diffusion: s.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(g)
	t.Cleanup(func() {
		hs.Close()
		g.Close()
		cancel()
		<-done
	})
	return hs.URL
}

// logLines reads an NDJSON log stream: one {"result": {"line": ...}} per line.
func logLines(t *testing.T, url string) []string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	var out []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var m struct {
			Result struct {
				Line struct {
					Raw string `json:"raw"`
				} `json:"line"`
			} `json:"result"`
			Error any `json:"error"`
		}
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil || m.Error != nil {
			t.Fatalf("GET %s: line %q: %v", url, sc.Text(), err)
		}
		out = append(out, m.Result.Line.Raw)
	}
	return out
}

// Issue 15, rough edge 2: GET /v1/llm/logs and /v1/diffusion/logs answered an empty 200
// unless ?tailLines=N was given. Without it they send the last 200 lines; tailLines=0
// sends none.
func TestLogsWithoutTailLinesSendTheLast200(t *testing.T) {
	url := startLogsGateway(t)
	for _, route := range []string{"/v1/llm/logs", "/v1/diffusion/logs"} {
		got := logLines(t, url+route)
		if len(got) != logstream.DefaultTailLines || got[0] != "line 100" || got[len(got)-1] != "line 299" {
			t.Errorf("%s: %d lines, want the last %d", route, len(got), logstream.DefaultTailLines)
		}
		if got := logLines(t, url+route+"?tailLines=3"); len(got) != 3 || got[2] != "line 299" {
			t.Errorf("%s?tailLines=3: %v", route, got)
		}
		if got := logLines(t, url+route+"?tailLines=0"); len(got) != 0 {
			t.Errorf("%s?tailLines=0: %d lines, want none", route, len(got))
		}
	}
}

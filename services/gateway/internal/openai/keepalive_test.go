package openai_test

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/services/gateway/internal/openai"
)

// waitingLLM is a stand-in LLM service whose chats wait for an offload: a waiting status,
// then (once resume is closed) the answer.
type waitingLLM struct {
	llmv1.UnimplementedLLMServiceServer
	resume chan struct{}
}

func (l *waitingLLM) Chat(_ *llmv1.ChatRequest, s llmv1.LLMService_ChatServer) error {
	w := &llmv1.ChatWaiting{Message: "waiting: the LLM is offloaded for an image, expected back in ~12 s (job j-1)", JobId: "j-1", ExpectedWaitMs: proto.Int64(12000)}
	if err := s.Send(&llmv1.ChatResponse{Event: &llmv1.ChatResponse_Waiting{Waiting: w}}); err != nil {
		return err
	}
	select {
	case <-l.resume:
	case <-s.Context().Done():
		return s.Context().Err()
	}
	if err := s.Send(&llmv1.ChatResponse{Event: &llmv1.ChatResponse_Delta{Delta: &llmv1.ChatDelta{Content: "back"}}}); err != nil {
		return err
	}
	return s.Send(&llmv1.ChatResponse{Event: &llmv1.ChatResponse_Done{Done: &llmv1.ChatDone{FinishReason: "stop"}}})
}

func TestChatStreamWaitingForAnOffloadSendsACommentThenTheAnswer(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	l := &waitingLLM{resume: make(chan struct{})}
	llmv1.RegisterLLMServiceServer(gs, l)
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	srv := httptest.NewServer(openai.New(orchestratorv1.NewOrchestratorServiceClient(cc), llmv1.NewLLMServiceClient(cc), nil))
	t.Cleanup(srv.Close)

	resp, err := http.Post(srv.URL+"/openai/v1/chat/completions", "application/json",
		strings.NewReader(`{"stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(resp.Body)
	var lines []string
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		lines = append(lines, line)
		if strings.HasPrefix(line, ": waiting: the LLM is offloaded for an image, expected back in ~12 s (job j-1)") {
			close(l.resume) // the comment came while the chat still waited
		}
		if line == "data: [DONE]" {
			break
		}
	}
	got := strings.Join(lines, "\n")
	if !strings.Contains(got, `"content":"back"`) || !strings.HasPrefix(lines[0], "data: ") || !strings.HasPrefix(lines[1], ": waiting") {
		t.Fatalf("stream:\n%s", got)
	}
}

package openai

import (
	"io"
	"net/http"
	"strings"
	"time"

	llmv1 "github.com/genailab/genailab/gen/llm/v1"
)

// Chats that wait for an offloaded LLM: the LLM service sends a waiting status first
// (ChatWaiting). The SSE stream turns it into a comment line (": waiting: the LLM is
// offloaded for an image, expected back in ~N s (job …)"), which OpenAI clients ignore, and
// repeats a comment every keepAliveEvery until the next message comes, so that proxies and
// clients with idle timeouts keep the connection. The wait stays bounded by the LLM service
// (wait_timeout_ms); when it runs out, the stream ends with an error event.

// keepAliveEvery is the interval of the SSE comment keep-alives.
var keepAliveEvery = 10 * time.Second

type chatMsg struct {
	msg *llmv1.ChatResponse
	err error
}

// recvKeepingAlive writes the waiting status as an SSE comment, then waits for the next
// message of stream, writing a keep-alive comment every keepAliveEvery meanwhile.
func recvKeepingAlive(w io.Writer, flusher http.Flusher, stream llmv1.LLMService_ChatClient, waiting *llmv1.ChatWaiting) (*llmv1.ChatResponse, error) {
	comment := func(text string) {
		// One line: a newline inside would end the comment.
		text = strings.NewReplacer("\r", " ", "\n", " ").Replace(text)
		_, _ = io.WriteString(w, ": "+text+"\n\n")
		if flusher != nil {
			flusher.Flush()
		}
	}
	comment(waiting.GetMessage())
	next := make(chan chatMsg, 1)
	go func() {
		m, err := stream.Recv()
		next <- chatMsg{m, err}
	}()
	tick := time.NewTicker(keepAliveEvery)
	defer tick.Stop()
	for {
		select {
		case r := <-next:
			return r.msg, r.err
		case <-tick.C:
			comment("waiting")
		}
	}
}

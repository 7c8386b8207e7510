package service

import (
	"testing"
	"time"

	llmv1 "github.com/genailab/genailab/gen/llm/v1"
)

// Issue 16: about 1 stop in 12 issued right after llama-server turned
// ready waited the whole 5 s grace, as llama-server drops a SIGTERM that
// arrives as it starts its main loop. The spec the service runs it with
// repeats the first SIGTERM early enough to bound such a stop to 300 ms
// (the supervisor's TestStopRightAfterStart… stops a stand-in that drops
// its first SIGTERM; BenchmarkStopRightAfterStart the real llama-server),
// and keeps the full grace after it.
func TestStopRightAfterStartSpecRepeatsTheFirstSIGTERM(t *testing.T) {
	s := &Service{opts: Options{TermGrace: DefaultTermGrace}}
	r := &resolved{cfg: &llmv1.LLMConfig{Host: "127.0.0.1", Port: 8080}, requested: &llmv1.LLMConfig{}}
	sp := s.spec(r, "llama-server", time.Minute)
	if sp.TermRepeat <= 0 || sp.TermRepeat > 200*time.Millisecond {
		t.Fatalf("TermRepeat %v: want a repeat within 200 ms, so that the stop ends by 300 ms", sp.TermRepeat)
	}
	if sp.TermGrace != DefaultTermGrace || sp.SecondTermGrace != DefaultTermGrace {
		t.Fatalf("graces %v, %v: want the configured %v after the repeat", sp.TermGrace, sp.SecondTermGrace, DefaultTermGrace)
	}
}

package sdprogress

import (
	"os"
	"testing"
	"time"
)

// BenchmarkParserFeed parses the captured full512 stdout (45 bars, 4.7 KB) fed in 512-byte
// chunks; the per-byte cost bounds what the parser adds to progress latency.
func BenchmarkParserFeed(b *testing.B) {
	data, err := os.ReadFile("testdata/cli/full512.stdout")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	var n int
	emit := func(Event) { n++ }
	for b.Loop() {
		var p Parser
		for rest := data; len(rest) > 0; {
			c := min(512, len(rest))
			p.Feed(rest[:c], emit)
			rest = rest[c:]
		}
		p.Flush(emit)
	}
}

// BenchmarkStepToProgress is the work between one step bar's bytes arriving and its Progress being
// ready: parse and track.
func BenchmarkStepToProgress(b *testing.B) {
	bar := []byte("\r  |=========================>                        | 15/30 - 1.46it/s\x1b[K")
	start := time.Now()
	tr := NewTracker(Plan{Width: 512, Height: 512, Steps: 30}, DefaultEstimates(), start)
	var p Parser
	now := start
	for b.Loop() {
		p.Feed(bar, func(ev Event) {
			now = now.Add(time.Millisecond)
			tr.Observe(ev, now)
			_ = tr.Progress(now)
		})
	}
}

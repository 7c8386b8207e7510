package supervisor

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"
)

// ack lets the progress fake print its next step.
func ack(t *testing.T, dir string, k int) {
	if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("ack-%d", k)), nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

func waitSegment(t *testing.T, ch <-chan string, want string) {
	t.Helper()
	select {
	case got := <-ch:
		if !strings.Contains(got, want) {
			t.Fatalf("got %q, want a segment containing %q", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("segment %q not delivered: it waits for a later terminator", want)
	}
}

// Each in-place progress update is delivered while the engine waits (it
// prints the next one only after the test saw this one), so delivery cannot
// depend on a later '\n' or '\r'.
func TestProgressSegmentsDeliveredImmediately(t *testing.T) {
	t.Parallel()
	for _, style := range []string{"sdcpp", "cr-terminated"} {
		t.Run(style, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			s := newSup(t, Config{})
			segs := make(chan string, 100)
			sp := fakeSpec(t, "progress", "steps=3", "dir="+dir, "style="+style)
			sp.Split = ScanTerminal
			sp.OnLine = func(l Line) {
				if strings.Contains(l.Text, "it/s") {
					segs <- l.Text
				}
			}
			if err := s.Start(context.Background(), sp); err != nil {
				t.Fatal(err)
			}
			for k := 1; k <= 3; k++ {
				waitSegment(t, segs, fmt.Sprintf("| %d/3 - 1.00it/s", k))
				ack(t, dir, k)
			}
			l := waitLine(t, s, "sampling completed")
			if l.Text != "[INFO ] stable-diffusion.cpp:3100 - sampling completed" {
				t.Fatalf("line after the bar: %q", l.Text)
			}
			var texts []string
			for _, l := range s.LogTail(10) {
				texts = append(texts, l.Text)
			}
			want := []string{
				"[INFO ] stable-diffusion.cpp:3000 - sampling using Euler A method",
				"  |===>       | 1/3 - 1.00it/s",
				"  |======>    | 2/3 - 1.00it/s",
				"  |==========>| 3/3 - 1.00it/s",
				"[INFO ] stable-diffusion.cpp:3100 - sampling completed",
			}
			if !slices.Equal(texts, want) {
				t.Fatalf("ring:\n%q\nwant\n%q", texts, want)
			}
		})
	}
}

// Raw chunks reach OnChunk as written, whatever the splitter.
func TestOnChunkGetsRawOutputAtOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := newSup(t, Config{})
	segs := make(chan string, 100)
	var mu sync.Mutex
	var raw bytes.Buffer
	sp := fakeSpec(t, "progress", "steps=2", "dir="+dir)
	sp.OnChunk = func(st Stream, b []byte) {
		mu.Lock()
		raw.Write(b)
		mu.Unlock()
		if st == Stdout && bytes.Contains(b, []byte("it/s")) {
			segs <- string(b)
		}
	}
	if err := s.Start(context.Background(), sp); err != nil {
		t.Fatal(err)
	}
	waitSegment(t, segs, "1/2 - 1.00it/s\x1b[K")
	ack(t, dir, 1)
	waitSegment(t, segs, "\r  |==========>| 2/2 - 1.00it/s\x1b[K")
	ack(t, dir, 2)
	waitLine(t, s, "sampling completed")
	// The default splitter keeps the whole '\r' run as one line.
	if got := linesContaining(s.LogTail(5), "1/2 - 1.00it/s"); got != 1 {
		t.Fatalf("%d lines with the first bar", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if !bytes.Contains(raw.Bytes(), []byte("\r  |=====>     | 1/2 - 1.00it/s\x1b[K\r  |==========>| 2/2")) {
		t.Fatalf("raw output: %q", raw.Bytes())
	}
}

func TestEnvironmentExplicitAndFiltered(t *testing.T) {
	t.Setenv("LLAMA_ARG_CTX_SIZE", "99")
	t.Setenv("GENAILAB_KEEP_ME", "kept")
	s := newSup(t, Config{})
	sp := fakeSpec(t, "env")
	sp.InheritEnv = true
	sp.DropEnv = DropPrefixes("LLAMA_ARG_")
	sp.Env = append(sp.Env, "GENAILAB_KEEP_ME=overridden", "EXTRA=1")
	sp.ReadyOnLine = func(l Line) bool { return strings.HasPrefix(l.Text, "ENV PATH=") }
	if err := s.Start(context.Background(), sp); err != nil {
		t.Fatal(err)
	}
	waitLine(t, s, "ENV EXTRA=1")
	waitLine(t, s, "ENV GENAILAB_KEEP_ME=overridden")
	for _, l := range s.LogTail(1000) {
		if strings.Contains(l.Text, "LLAMA_ARG_") || strings.Contains(l.Text, "=kept") {
			t.Fatalf("leaked: %q", l.Text)
		}
	}

	// Without InheritEnv the environment is exactly Env.
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := s.Logs(0)
	sp.InheritEnv = false
	sp.Env = []string{"ONLY=1", "GORACE=atexit_sleep_ms=0"}
	sp.ReadyOnLine = func(l Line) bool { return strings.HasPrefix(l.Text, "ENV ONLY=") }
	if err := s.Start(context.Background(), sp); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []string
	for len(got) < 2 {
		e, err := c.Next(ctx)
		if err != nil {
			t.Fatalf("env lines: %v (got %q)", err, got)
		}
		got = append(got, e.Value.Text)
	}
	if want := []string{"ENV GORACE=atexit_sleep_ms=0", "ENV ONLY=1"}; !slices.Equal(got, want) {
		t.Fatalf("env %q, want %q", got, want)
	}
}

func TestBuildEnv(t *testing.T) {
	env := []string{"PATH=/bin", "LLAMA_ARG_N_GPU_LAYERS=99", "HOME=/root", "LLAMA_ARG_PORT=1"}
	sp := &Spec{InheritEnv: true, DropEnv: DropPrefixes("LLAMA_ARG_"), Env: []string{"HOME=/tmp"}}
	if got, want := buildEnv(sp, env), []string{"PATH=/bin", "HOME=/root", "HOME=/tmp"}; !slices.Equal(got, want) {
		t.Fatalf("buildEnv = %q, want %q", got, want)
	}
	sp.InheritEnv = false
	if got := buildEnv(sp, env); !slices.Equal(got, []string{"HOME=/tmp"}) {
		t.Fatalf("explicit env = %q", got)
	}
}

// readOutput splits correctly whatever the read sizes.
func TestReadOutputSplitting(t *testing.T) {
	type tc struct {
		name  string
		in    string
		split bufio.SplitFunc
		max   int
		want  []string
	}
	cases := []tc{
		{"lines", "a\nb\r\n\nc", ScanLines, 100, []string{"a", "b", "", "c"}},
		{"terminal", "log\n\r  |=> | 1/2\x1b[K\r  |==>| 2/2\x1b[K\ndone\r\n", ScanTerminal, 100,
			[]string{"log", "  |=> | 1/2", "  |==>| 2/2", "done"}},
		{"terminal cr-terminated", "a\rb\rc\n", ScanTerminal, 100, []string{"a", "b", "c"}},
		{"terminal lone ESC", "x\x1by\n", ScanTerminal, 100, []string{"x\x1by"}},
		{"long line cut", strings.Repeat("x", 10) + "\nshort\n" + strings.Repeat("y", 11) + "\n", ScanLines, 5,
			[]string{"xxxxx", "xxxxx", "short", "yyyyy", "yyyyy", "y"}},
		{"no final newline", "abc", ScanLines, 100, []string{"abc"}},
	}
	for _, c := range cases {
		for _, reader := range []string{"whole", "bytewise"} {
			t.Run(c.name+"/"+reader, func(t *testing.T) {
				var r = strings.NewReader(c.in)
				var got []string
				var chunks bytes.Buffer
				sink := func(_ Stream, b []byte) { got = append(got, string(b)) }
				onChunk := func(_ Stream, b []byte) { chunks.Write(b) }
				if reader == "bytewise" {
					readOutput(iotest.OneByteReader(r), Stdout, c.split, c.max, onChunk, sink)
				} else {
					readOutput(r, Stdout, c.split, c.max, onChunk, sink)
				}
				if !slices.Equal(got, c.want) {
					t.Fatalf("lines %q, want %q", got, c.want)
				}
				if chunks.String() != c.in {
					t.Fatalf("chunks %q, want the input", chunks.String())
				}
			})
		}
	}
}

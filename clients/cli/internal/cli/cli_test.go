package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	genailab "github.com/genailab/genailab/clients/go"
	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	modelsv1 "github.com/genailab/genailab/gen/models/v1"
	"github.com/genailab/genailab/pkg/grpcerr"
)

func TestMessageIsOneLineWithTheServicesWords(t *testing.T) {
	a := &App{}
	cases := []struct {
		err  error
		want string
	}{
		{status.Error(codes.NotFound, "model not found: nope"), "model not found: nope"},
		{status.Error(codes.Unavailable, "llama-server exited during start:\nerror: bad model\n  at line 3\n"), "llama-server exited during start: | error: bad model | at line 3"},
		{status.Error(codes.Unauthenticated, "missing bearer token"), "missing bearer token (see --token or GENAILAB_TOKEN)"},
		{fmt.Errorf("llm service at 1.2.3.4:1: %w", status.Error(codes.Unavailable, "down")), "llm service at 1.2.3.4:1: down"},
		{&genailab.JobError{JobID: "j1", Err: status.Error(codes.InvalidArgument, "width must be a multiple of 64")}, "job j1: width must be a multiple of 64"},
		{&genailab.JobError{JobID: "j1", Err: context.Canceled, Abandoned: true}, "interrupted; job j1 cancelled on the server"},
		{&genailab.JobError{JobID: "j1", Err: context.Canceled, Abandoned: true, CancelErr: status.Error(codes.Unavailable, "gone")}, "interrupted; cancelling job j1 on the server failed: gone"},
		{errors.New("engine said \x1b[31mred\x1b[0m"), "engine said ␛[31mred␛[0m"},
		{status.Error(codes.Internal, ""), "Internal"},
	}
	for _, c := range cases {
		if got := a.message(c.err); got != c.want {
			t.Errorf("message(%v)\n got %q\nwant %q", c.err, got, c.want)
		}
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out.png")
	if err := writeFileAtomic(p, []byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := writeFileAtomic(p, []byte("two")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "two" {
		t.Errorf("content %q", b)
	}
	// A link is followed, not replaced.
	link := filepath.Join(dir, "link.png")
	if err := os.Symlink(p, link); err != nil {
		t.Fatal(err)
	}
	if err := writeFileAtomic(link, []byte("three")); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Lstat(link); fi.Mode()&os.ModeSymlink == 0 {
		t.Error("the link was replaced")
	}
	if b, _ := os.ReadFile(p); string(b) != "three" {
		t.Errorf("through the link: %q", b)
	}
	// A pipe (like /dev/null or /dev/stdout) is written to, not replaced.
	fifo := filepath.Join(dir, "pipe")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		b, _ := os.ReadFile(fifo)
		got <- string(b)
	}()
	if err := writeFileAtomic(fifo, []byte("piped")); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s != "piped" {
		t.Errorf("pipe got %q", s)
	}
	if fi, _ := os.Lstat(fifo); fi.Mode()&os.ModeNamedPipe == 0 {
		t.Error("the pipe was replaced")
	}
	if err := writeFileAtomic(dir, []byte("x")); err == nil {
		t.Error("writing over a directory succeeded")
	}
	if err := writeFileAtomic(filepath.Join(dir, "missing", "x.png"), []byte("x")); err == nil {
		t.Error("writing into a missing directory succeeded")
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}

func TestLiveLinesFitTheTerminal(t *testing.T) {
	for _, width := range []int{40, 80, 200} {
		p := &diffusionv1.Progress{Stage: diffusionv1.Stage_STAGE_SAMPLING, Step: 12, TotalSteps: 150, Percent: 37.5, StepsPerSecond: 1.43}
		if l := progressBar(p, width, 83*time.Second); utf8.RuneCountInString(l) > width-1 && width >= 60 {
			t.Errorf("width %d: progress line of %d columns: %q", width, utf8.RuneCountInString(l), l)
		}
		d := &modelsv1.DownloadProgress{Component: "diffusion_model", ComponentIndex: 1, ComponentCount: 4, DownloadedBytes: 3 << 30,
			TotalBytes: 9 << 30, BytesPerSecond: 52 << 20, EtaMs: 118000}
		if l := downloadLine(d, width); utf8.RuneCountInString(l) > width-1 && width >= 90 {
			t.Errorf("width %d: download line of %d columns: %q", width, utf8.RuneCountInString(l), l)
		}
	}
	l := downloadLine(&modelsv1.DownloadProgress{Component: "vae", ComponentIndex: 1, ComponentCount: 3, DownloadedBytes: 50 << 20,
		TotalBytes: 100 << 20, BytesPerSecond: 10 << 20, EtaMs: 5000}, 100)
	if !strings.HasPrefix(l, "vae (2/3) [") || !strings.HasSuffix(l, "] 50.0 MiB / 100.0 MiB  10.0 MiB/s  ETA 5.0s") {
		t.Errorf("download line %q", l)
	}
}

func TestPlainDownloadProgressPrintsTenthsAndComponents(t *testing.T) {
	var p plainProgress
	var printed []string
	for _, m := range []*modelsv1.DownloadProgress{
		{Component: "vae", DownloadedBytes: 0, TotalBytes: 1000, EtaMs: -1},
		{Component: "vae", DownloadedBytes: 50, TotalBytes: 1000},
		{Component: "vae", DownloadedBytes: 120, TotalBytes: 1000},
		{Component: "vae", DownloadedBytes: 150, TotalBytes: 1000},
		{Component: "clip_l", DownloadedBytes: 160, TotalBytes: 1000},
		{Component: "clip_l", DownloadedBytes: 1000, TotalBytes: 1000, BytesPerSecond: 2048, EtaMs: 0},
	} {
		if line, ok := p.next(m); ok {
			printed = append(printed, line)
		}
	}
	want := []string{
		"vae: 0 B of 1000 B (0%), -, ETA -",
		"vae: 120 B of 1000 B (12%), -, ETA 0ms",
		"clip_l: 160 B of 1000 B (16%), -, ETA 0ms",
		"clip_l: 1000 B of 1000 B (100%), 2.0 KiB/s, ETA 0ms",
	}
	if strings.Join(printed, "\n") != strings.Join(want, "\n") {
		t.Errorf("printed\n%s\nwant\n%s", strings.Join(printed, "\n"), strings.Join(want, "\n"))
	}
}

// The CLI tells an interruption by the status' ErrorInfo reason, not by its message: the
// caller's own cancel (no ErrorInfo) and a context cancelled on the server (CANCELLED) are
// "interrupted"; a job cancelled by someone else (JOB_CANCELLED) is the server's message.
func TestInterruptedBranchesOnReason(t *testing.T) {
	cases := []struct {
		err  error
		want bool
	}{
		{context.Canceled, true},
		{fmt.Errorf("chat: %w", context.Canceled), true},
		{status.Error(codes.Canceled, "context canceled"), true}, // made by the gRPC client
		{grpcerr.Status(fmt.Errorf("wait for the engine: %w", context.Canceled)), true},
		{grpcerr.New(grpcerr.Info{Code: codes.Canceled, Reason: grpcerr.ReasonCanceled, Message: "stream ended"}), true},
		{grpcerr.New(grpcerr.Info{Code: codes.Canceled, Reason: "JOB_CANCELLED", Message: "job j1 was cancelled by another client: context canceled"}), false},
		{status.Error(codes.Unavailable, "interrupted"), false}, // the text alone is no interruption
	}
	for _, c := range cases {
		if got := interrupted(c.err); got != c.want {
			t.Errorf("interrupted(%v) = %v, want %v", c.err, got, c.want)
		}
	}
	if got := statusText(cases[5].err); got != "job j1 was cancelled by another client: context canceled" {
		t.Errorf("statusText %q", got)
	}
	if got := statusText(cases[3].err); got != "interrupted" {
		t.Errorf("statusText %q", got)
	}
}

// Regression: an Unavailable that the service sent ("source unavailable: ... no such host",
// the download source could not be resolved) was reported as "cannot reach the llm service
// at ...: no such host (is genailab running there?...)". Only a status the gRPC client made
// itself, without an ErrorInfo reason, says that the service was not reached.
func TestAtBlamesTheServiceOnlyWhenItWasNotReached(t *testing.T) {
	c, err := genailab.Dial(genailab.Options{Addr: "127.0.0.1:50054"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a := &App{client: c}
	source := "source unavailable: HEAD https://huggingface.co/m.gguf: dial tcp: lookup huggingface.co: no such host"
	cases := []struct {
		err  error
		want string
	}{
		{grpcerr.New(grpcerr.Info{Code: codes.Unavailable, Reason: grpcerr.ReasonSourceUnavailable, Message: source}),
			"the llm service at 127.0.0.1:50051 cannot reach the download source: " + source},
		{grpcerr.New(grpcerr.Info{Code: codes.Unavailable, Reason: "DOWNLOAD_INTERRUPTED", Message: "download interrupted: read: connection refused"}),
			"download interrupted: read: connection refused"},
		{status.Error(codes.Unavailable, `connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.1:50051: connect: connection refused"`),
			"cannot reach the llm service at 127.0.0.1:50051: connection refused (is genailab running there? see --addr and genaictl --help)"},
		{status.Error(codes.Unavailable, `name resolver error: produced zero addresses: lookup gpu1: no such host`),
			"cannot reach the llm service at 127.0.0.1:50051: no such host (is genailab running there? see --addr and genaictl --help)"},
	}
	for _, c := range cases {
		if got := a.message(a.at(genailab.ServiceLLM, c.err)); got != c.want {
			t.Errorf("at(%v)\n got %q\nwant %q", c.err, got, c.want)
		}
	}
}

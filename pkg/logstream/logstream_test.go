package logstream_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	commonv1 "github.com/genailab/genailab/gen/common/v1"
	"github.com/genailab/genailab/pkg/logring"
	"github.com/genailab/genailab/pkg/logstream"
)

// serve serves the LogService of ring over a real loopback gRPC connection.
func serve(t *testing.T, ring *logring.Ring[string]) commonv1.LogServiceClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	commonv1.RegisterLogServiceServer(gs, logstream.NewServer(logstream.Source[string]{
		Subscribe: ring.Subscribe,
		Line:      func(v string, seq uint64) *commonv1.LogLine { return &commonv1.LogLine{Raw: v, Message: v, Seq: seq} },
	}))
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return commonv1.NewLogServiceClient(cc)
}

func lines(t *testing.T, c commonv1.LogServiceClient, req *commonv1.StreamLogsRequest) ([]string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := c.StreamLogs(ctx, req)
	if err != nil {
		return nil, err
	}
	var out []string
	for {
		m, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, m.GetLine().GetRaw())
	}
}

func filled(n int) *logring.Ring[string] {
	r := logring.New[string](1000)
	for i := range n {
		r.Append(fmt.Sprintf("line %d", i))
	}
	return r
}

// Issue 15: GET /v1/llm/logs answered nothing unless ?tailLines=N was given. A request
// without tail_lines gets the last DefaultTailLines lines; an explicit 0 gets none.
func TestOmittedTailLinesSendsTheDefaultTail(t *testing.T) {
	c := serve(t, filled(300))
	got, err := lines(t, c, &commonv1.StreamLogsRequest{})
	if err != nil || len(got) != logstream.DefaultTailLines || got[0] != "line 100" || got[len(got)-1] != "line 299" {
		t.Fatalf("omitted tail_lines: %d lines (%v), err %v", len(got), first(got), err)
	}
	if got, err := lines(t, c, &commonv1.StreamLogsRequest{TailLines: proto.Int32(0)}); err != nil || len(got) != 0 {
		t.Fatalf("tail_lines 0: %d lines, err %v", len(got), err)
	}
	if got, err := lines(t, c, &commonv1.StreamLogsRequest{TailLines: proto.Int32(3)}); err != nil || len(got) != 3 || got[2] != "line 299" {
		t.Fatalf("tail_lines 3: %v, err %v", got, err)
	}
	if got, err := lines(t, c, &commonv1.StreamLogsRequest{TailLines: proto.Int32(5000)}); err != nil || len(got) != 300 {
		t.Fatalf("tail_lines over the ring: %d lines, err %v", len(got), err)
	}
}

func TestNegativeTailLinesIsInvalidArgument(t *testing.T) {
	c := serve(t, filled(3))
	_, err := lines(t, c, &commonv1.StreamLogsRequest{TailLines: proto.Int32(-1)})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("tail_lines -1: %v, want InvalidArgument", err)
	}
}

// Follow sends the tail, then every new line, and ends without an error when the ring
// closes (the service shutting down).
func TestFollowUntilTheRingCloses(t *testing.T) {
	ring := filled(2)
	c := serve(t, ring)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := c.StreamLogs(ctx, &commonv1.StreamLogsRequest{TailLines: proto.Int32(1), Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.Recv()
	if err != nil || m.GetLine().GetRaw() != "line 1" {
		t.Fatalf("tail: %v %v", m, err)
	}
	ring.Append("new")
	m, err = s.Recv()
	if err != nil || m.GetLine().GetRaw() != "new" || m.GetLine().GetSeq() != 3 { // sequence numbers start at 1
		t.Fatalf("followed: %v %v", m, err)
	}
	ring.Close()
	if _, err := s.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("after close: %v, want the end of the stream", err)
	}
}

func first(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return s[0]
}

// Package logstream is the one server side of StreamLogs for genailab's engine services:
// the tail of an engine's log ring, then, with follow, every new line, as
// genailab.common.v1.StreamLogsResponse messages. The LLM and the diffusion service serve
// it as genailab.common.v1.LogService (Server), and their own StreamLogs RPCs, which carry
// the same messages in their packages until a v2, delegate to Stream.
//
// A tail_lines left out sends the last DefaultTailLines lines (0 sends none: follow only
// the new ones); a negative one is InvalidArgument. A reader too slow for the ring is told
// how many lines it missed on the next line it gets; it never slows the engine.
package logstream

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/genailab/genailab/gen/common/v1"
	"github.com/genailab/genailab/pkg/grpcerr"
	"github.com/genailab/genailab/pkg/logring"
	"github.com/genailab/genailab/pkg/supervisor"
)

// DefaultTailLines is how many of the latest lines a request without tail_lines gets.
const DefaultTailLines = 200

// Source is an engine's log: Subscribe returns a cursor that first yields up to backlog of
// the latest lines (logring.Ring.Subscribe, supervisor.Supervisor.Logs), Line converts one
// to the API's LogLine.
type Source[T any] struct {
	Subscribe func(backlog int) *logring.Cursor[T]
	Line      func(v T, seq uint64) *commonv1.LogLine
}

// Stream sends the lines req asks for through send: the tail, then, with follow, new
// lines until ctx ends or the ring is closed (the service shutting down: the log ends
// without an error). Its errors are gRPC status errors.
func Stream[T any](ctx context.Context, src Source[T], req *commonv1.StreamLogsRequest, send func(*commonv1.StreamLogsResponse) error) error {
	tail := int32(DefaultTailLines)
	if req.TailLines != nil {
		tail = req.GetTailLines()
	}
	if tail < 0 {
		return grpcerr.Status(grpcerr.Invalidf("tail_lines must not be negative, got %d", tail))
	}
	cur := src.Subscribe(int(tail))
	for {
		var e logring.Entry[T]
		if req.GetFollow() {
			var err error
			e, err = cur.Next(ctx)
			if errors.Is(err, logring.ErrClosed) {
				return nil
			}
			if err != nil {
				return grpcerr.Status(err)
			}
		} else {
			var ok bool
			if e, ok = cur.TryNext(); !ok {
				return nil
			}
		}
		if err := send(&commonv1.StreamLogsResponse{Line: src.Line(e.Value, e.Seq), Missed: e.Missed}); err != nil {
			return err
		}
	}
}

// Server is genailab.common.v1.LogService over one engine's log.
type Server[T any] struct {
	commonv1.UnimplementedLogServiceServer
	src Source[T]
}

// NewServer returns the LogService of src; register it with commonv1.RegisterLogServiceServer.
func NewServer[T any](src Source[T]) *Server[T] { return &Server[T]{src: src} }

// StreamLogs implements commonv1.LogServiceServer.
func (s *Server[T]) StreamLogs(req *commonv1.StreamLogsRequest, stream grpc.ServerStreamingServer[commonv1.StreamLogsResponse]) error {
	return Stream(stream.Context(), s.src, req, stream.Send)
}

// SupervisorLine is the LogLine of a line of a process that package supervisor runs.
func SupervisorLine(l supervisor.Line, seq uint64) *commonv1.LogLine {
	return &commonv1.LogLine{
		Time:    timestamppb.New(l.Time),
		Level:   Level(l.Level),
		Message: l.Message,
		Raw:     l.Text,
		Stream:  StreamOf(l.Stream),
		Seq:     seq,
	}
}

// Level is the API's level of a slog level.
func Level(l slog.Level) commonv1.LogLevel {
	switch {
	case l >= slog.LevelError:
		return commonv1.LogLevel_LOG_LEVEL_ERROR
	case l >= slog.LevelWarn:
		return commonv1.LogLevel_LOG_LEVEL_WARN
	case l >= slog.LevelInfo:
		return commonv1.LogLevel_LOG_LEVEL_INFO
	}
	return commonv1.LogLevel_LOG_LEVEL_DEBUG
}

// StreamOf is the API's stream of a supervised process's output stream.
func StreamOf(s supervisor.Stream) commonv1.LogStream {
	switch s {
	case supervisor.Stdout:
		return commonv1.LogStream_LOG_STREAM_STDOUT
	case supervisor.Stderr:
		return commonv1.LogStream_LOG_STREAM_STDERR
	}
	return commonv1.LogStream_LOG_STREAM_UNSPECIFIED
}

package service

import (
	"errors"
	"fmt"
	"log/slog"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/genailab/genailab/gen/common/v1"
	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	"github.com/genailab/genailab/pkg/logring"
	"github.com/genailab/genailab/pkg/supervisor"
)

// StreamLogs implements LLMService: the last tail_lines lines, then, with
// follow, every new line. A reader too slow for the ring is told how many
// lines it missed on the next line it gets; it never slows llama-server.
func (s *Service) StreamLogs(req *llmv1.StreamLogsRequest, stream grpc.ServerStreamingServer[llmv1.StreamLogsResponse]) error {
	if req.GetTailLines() < 0 {
		return toStatus(fmt.Errorf("%w: tail_lines must not be negative", ErrInvalidRequest))
	}
	ctx := stream.Context()
	cur := s.sup.Logs(int(req.GetTailLines()))
	if !req.GetFollow() {
		for {
			e, ok := cur.TryNext()
			if !ok {
				return nil
			}
			if err := stream.Send(logResponse(e)); err != nil {
				return err
			}
		}
	}
	for {
		e, err := cur.Next(ctx)
		if errors.Is(err, logring.ErrClosed) {
			return nil // the service is shutting down: the log ends
		}
		if err != nil {
			return toStatus(err)
		}
		if err := stream.Send(logResponse(e)); err != nil {
			return err
		}
	}
}

func logResponse(e logring.Entry[supervisor.Line]) *llmv1.StreamLogsResponse {
	l := e.Value
	return &llmv1.StreamLogsResponse{
		Missed: e.Missed,
		Line: &commonv1.LogLine{
			Time:    timestamppb.New(l.Time),
			Level:   logLevel(l.Level),
			Message: l.Message,
			Raw:     l.Text,
			Stream:  logStream(l.Stream),
			Seq:     e.Seq,
		},
	}
}

func logLevel(l slog.Level) commonv1.LogLevel {
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

func logStream(s supervisor.Stream) commonv1.LogStream {
	switch s {
	case supervisor.Stdout:
		return commonv1.LogStream_LOG_STREAM_STDOUT
	case supervisor.Stderr:
		return commonv1.LogStream_LOG_STREAM_STDERR
	}
	return commonv1.LogStream_LOG_STREAM_UNSPECIFIED
}

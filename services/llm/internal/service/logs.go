package service

import (
	"google.golang.org/grpc"

	commonv1 "github.com/genailab/genailab/gen/common/v1"
	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	"github.com/genailab/genailab/pkg/logstream"
	"github.com/genailab/genailab/pkg/supervisor"
)

// Logs is llama-server's log as genailab.common.v1.LogService serves it
// (logstream.NewServer).
func (s *Service) Logs() logstream.Source[supervisor.Line] {
	return logstream.Source[supervisor.Line]{Subscribe: s.sup.Logs, Line: logstream.SupervisorLine}
}

// StreamLogs implements LLMService: genailab.common.v1.LogService's StreamLogs
// (package logstream), in this package's messages.
func (s *Service) StreamLogs(req *llmv1.StreamLogsRequest, stream grpc.ServerStreamingServer[llmv1.StreamLogsResponse]) error {
	return logstream.Stream(stream.Context(), s.Logs(), &commonv1.StreamLogsRequest{TailLines: req.TailLines, Follow: req.GetFollow()},
		func(m *commonv1.StreamLogsResponse) error {
			return stream.Send(&llmv1.StreamLogsResponse{Line: m.GetLine(), Missed: m.GetMissed()})
		})
}

package server

import (
	"context"
	"sync"

	"google.golang.org/grpc"

	monitorv1 "github.com/genailab/genailab/gen/monitor/v1"
)

// wire is a snapshot's WatchUsageResponse encoded once, by the first
// stream that sends it, and sent as the same bytes by every other: with
// 100 subscribers the snapshot is marshalled once, not 100 times. Only
// uncompressed streams share it (sharedEncoding), since the bytes carry
// the encoding stream's compression. The zero value is ready to use.
type wire struct {
	once sync.Once
	msg  *grpc.PreparedMsg
	err  error
}

// prepared returns the encoded response for usage, encoding it with
// stream's codec on the first call.
func (w *wire) prepared(stream grpc.ServerStream, usage *monitorv1.Usage) (*grpc.PreparedMsg, error) {
	w.once.Do(func() {
		w.msg = new(grpc.PreparedMsg)
		w.err = w.msg.Encode(stream, &monitorv1.WatchUsageResponse{Usage: usage})
	})
	return w.msg, w.err
}

// sharedEncoding reports whether the stream of a server handler's ctx
// sends its messages uncompressed, and so may send bytes encoded for
// another such stream. A stream whose compression cannot be told is not.
func sharedEncoding(ctx context.Context) bool {
	s, ok := grpc.ServerTransportStreamFromContext(ctx).(interface {
		RecvCompress() string
		SendCompress() string
	})
	if !ok {
		return false
	}
	identity := func(name string) bool { return name == "" || name == "identity" }
	return identity(s.RecvCompress()) && identity(s.SendCompress())
}

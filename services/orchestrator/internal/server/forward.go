package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/genailab/genailab/pkg/grpcerr"
)

// ForwardedHeader marks a call a follower forwarded to the leader, with the follower's
// address as its value. A replica that is not leading refuses a call that carries it
// instead of forwarding it again: the leadership changed under the follower, and its
// caller retries (the Unavailable NOT_LEADER of a follower without a leader). So a call
// is forwarded at most once and never loops.
const ForwardedHeader = "genailab-forwarded-by"

// forwarder sends a follower's calls to the leader, transparently: the same method and
// messages (re-encoded from the proto descriptors of the method: generic, no handler per
// RPC), the caller's metadata (its authorization included) plus ForwardedHeader, its
// deadline and cancellation (the outgoing context is the incoming one), and the leader's
// headers, trailers and status, details included, passed back unchanged.
type forwarder struct {
	dial []grpc.DialOption

	mu   sync.Mutex
	self string // this replica's address (its election value)
	// conns are the connections to the other replicas: the leader, and the holders of
	// images (a few; one per replica the lab has run).
	conns map[string]*grpc.ClientConn
}

func newForwarder(self string, dial []grpc.DialOption) *forwarder {
	return &forwarder{self: self, dial: dial, conns: map[string]*grpc.ClientConn{}}
}

// id is this replica's address.
func (f *forwarder) id() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.self
}

func (f *forwarder) setSelf(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.self = id
}

// conn returns the connection to addr, made on first use. A connection to a replica that
// went away only retries in the background (grpc's backoff): the few addresses a lab's
// replicas had are kept until the process ends.
func (f *forwarder) conn(addr string) (*grpc.ClientConn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if cc := f.conns[addr]; cc != nil {
		return cc, nil
	}
	cc, err := grpc.NewClient(addr, f.dial...)
	if err != nil {
		return nil, fmt.Errorf("connect to the replica %s: %w", addr, err)
	}
	f.conns[addr] = cc
	return cc, nil
}

func (f *forwarder) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for addr, cc := range f.conns {
		cc.Close()
		delete(f.conns, addr)
	}
}

// forwarded tells whether ctx is a call another replica forwarded.
func forwarded(ctx context.Context) bool {
	md, _ := metadata.FromIncomingContext(ctx)
	return len(md.Get(ForwardedHeader)) > 0
}

// outgoing is ctx (its deadline and cancellation) with the caller's metadata to send on,
// less what the transport sets itself, and ForwardedHeader.
func (f *forwarder) outgoing(ctx context.Context) context.Context {
	in, _ := metadata.FromIncomingContext(ctx)
	out := metadata.MD{}
	for k, v := range in {
		switch {
		case strings.HasPrefix(k, ":"), strings.HasPrefix(k, "grpc-"), k == "content-type", k == "user-agent", k == "te":
			continue
		}
		out[k] = v
	}
	out.Set(ForwardedHeader, f.id())
	return metadata.NewOutgoingContext(ctx, out)
}

// messageTypes are the request and response types of a full method name
// ("/package.Service/Method"), from the registered proto descriptors.
func messageTypes(full string) (in, out protoreflect.MessageType, err error) {
	name := protoreflect.FullName(strings.ReplaceAll(strings.TrimPrefix(full, "/"), "/", "."))
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(name)
	if err != nil {
		return nil, nil, fmt.Errorf("method %s: %w", full, err)
	}
	m, ok := d.(protoreflect.MethodDescriptor)
	if !ok {
		return nil, nil, fmt.Errorf("%s is not a method", full)
	}
	if in, err = protoregistry.GlobalTypes.FindMessageByName(m.Input().FullName()); err != nil {
		return nil, nil, fmt.Errorf("method %s: %w", full, err)
	}
	if out, err = protoregistry.GlobalTypes.FindMessageByName(m.Output().FullName()); err != nil {
		return nil, nil, fmt.Errorf("method %s: %w", full, err)
	}
	return in, out, nil
}

// unary forwards a unary call to addr.
func (f *forwarder) unary(ctx context.Context, addr, full string, req any) (any, error) {
	_, outType, err := messageTypes(full)
	if err != nil {
		return nil, grpcerr.Status(err)
	}
	cc, err := f.conn(addr)
	if err != nil {
		return nil, grpcerr.Status(err)
	}
	reply := outType.New().Interface()
	var header, trailer metadata.MD
	err = cc.Invoke(f.outgoing(ctx), full, req, reply, grpc.Header(&header), grpc.Trailer(&trailer))
	if len(header) > 0 {
		_ = grpc.SetHeader(ctx, header)
	}
	if len(trailer) > 0 {
		grpc.SetTrailer(ctx, trailer)
	}
	if err != nil {
		return nil, err // the leader's status, unchanged
	}
	return reply, nil
}

// stream forwards a streaming call (server, client or bidirectional) to addr: the caller's
// messages go on as they come, the leader's come back as they come.
func (f *forwarder) stream(ss grpc.ServerStream, addr, full string) error {
	inType, outType, err := messageTypes(full)
	if err != nil {
		return grpcerr.Status(err)
	}
	cc, err := f.conn(addr)
	if err != nil {
		return grpcerr.Status(err)
	}
	ctx, cancel := context.WithCancel(f.outgoing(ss.Context()))
	defer cancel()
	cs, err := cc.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, full)
	if err != nil {
		return err
	}
	go func() {
		for {
			m := inType.New().Interface()
			if err := ss.RecvMsg(m); err != nil {
				if errors.Is(err, io.EOF) {
					_ = cs.CloseSend()
				} else {
					cancel() // the caller's stream broke: the leader's call ends too
				}
				return
			}
			if err := cs.SendMsg(m); err != nil {
				return // the leader's call ended: its status comes from RecvMsg
			}
		}
	}()
	if header, err := cs.Header(); err == nil && len(header) > 0 {
		if err := ss.SendHeader(header); err != nil {
			return err
		}
	}
	for {
		m := outType.New().Interface()
		if err := cs.RecvMsg(m); err != nil {
			ss.SetTrailer(cs.Trailer())
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err // the leader's status, unchanged
		}
		if err := ss.SendMsg(m); err != nil {
			return err
		}
	}
}

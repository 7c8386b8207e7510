// Package authprobe checks a running gRPC server's authentication from the outside: it
// lists every method the server serves, through server reflection (so that a service
// registered later is probed without anyone adding it to a list), and calls each one
// without credentials or with the given ones, reporting the status code each answered.
// The fault suite's "auth refusals for every RPC" is built on it.
package authprobe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	reflectpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/emptypb"
)

// Method is one RPC as server reflection describes it.
type Method struct {
	// FullName is the method's path as gRPC sends it: "/pkg.Service/Method".
	FullName     string
	ClientStream bool
	ServerStream bool
}

// Methods lists every method of every service cc's server lists through reflection,
// sorted by name. cc needs whatever credentials the server asks of reflection calls.
func Methods(ctx context.Context, cc grpc.ClientConnInterface) ([]Method, error) {
	stream, err := reflectpb.NewServerReflectionClient(cc).ServerReflectionInfo(ctx)
	if err != nil {
		return nil, fmt.Errorf("server reflection: %w", err)
	}
	defer func() { _ = stream.CloseSend() }()
	ask := func(req *reflectpb.ServerReflectionRequest) (*reflectpb.ServerReflectionResponse, error) {
		if err := stream.Send(req); err != nil {
			return nil, err
		}
		resp, err := stream.Recv()
		if err != nil {
			return nil, err
		}
		if e := resp.GetErrorResponse(); e != nil {
			return nil, status.Error(codes.Code(e.GetErrorCode()), e.GetErrorMessage())
		}
		return resp, nil
	}
	list, err := ask(&reflectpb.ServerReflectionRequest{MessageRequest: &reflectpb.ServerReflectionRequest_ListServices{}})
	if err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	var out []Method
	// Files already sent on this stream are not sent again: keep them all.
	files := map[string]*descriptorpb.FileDescriptorProto{}
	for _, svc := range list.GetListServicesResponse().GetService() {
		name := svc.GetName()
		resp, err := ask(&reflectpb.ServerReflectionRequest{MessageRequest: &reflectpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: name}})
		if err != nil {
			return nil, fmt.Errorf("describe %s: %w", name, err)
		}
		for _, raw := range resp.GetFileDescriptorResponse().GetFileDescriptorProto() {
			fd := &descriptorpb.FileDescriptorProto{}
			if err := proto.Unmarshal(raw, fd); err != nil {
				return nil, fmt.Errorf("describe %s: %w", name, err)
			}
			files[fd.GetName()] = fd
		}
		sd := findService(files, name)
		if sd == nil {
			return nil, fmt.Errorf("describe %s: no file describes it", name)
		}
		for _, m := range sd.GetMethod() {
			out = append(out, Method{FullName: "/" + name + "/" + m.GetName(), ClientStream: m.GetClientStreaming(), ServerStream: m.GetServerStreaming()})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].FullName < out[j].FullName })
	return out, nil
}

func findService(files map[string]*descriptorpb.FileDescriptorProto, full string) *descriptorpb.ServiceDescriptorProto {
	for _, fd := range files {
		pkg := fd.GetPackage()
		for _, sd := range fd.GetService() {
			if n := sd.GetName(); (pkg == "" && n == full) || pkg+"."+n == full {
				return sd
			}
		}
	}
	return nil
}

// Call invokes m with an empty request (valid for every message type) over cc and
// returns the code it ends with: the first error of a stream, codes.OK for a call that
// succeeded or a stream that ended cleanly or stayed open (a watch with nothing to say
// yet, which ctx then ends). opts are per-call options (credentials).
func Call(ctx context.Context, cc grpc.ClientConnInterface, m Method, opts ...grpc.CallOption) codes.Code {
	if !m.ClientStream && !m.ServerStream {
		return status.Code(cc.Invoke(ctx, m.FullName, &emptypb.Empty{}, &emptypb.Empty{}, opts...))
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	desc := &grpc.StreamDesc{StreamName: m.FullName[strings.LastIndex(m.FullName, "/")+1:], ClientStreams: m.ClientStream, ServerStreams: m.ServerStream}
	cs, err := cc.NewStream(ctx, desc, m.FullName, opts...)
	if err != nil {
		return status.Code(err)
	}
	if err := cs.SendMsg(&emptypb.Empty{}); err != nil && !errors.Is(err, io.EOF) {
		return status.Code(err)
	}
	if err := cs.CloseSend(); err != nil {
		return status.Code(err)
	}
	// The first message or the end tells: an unauthenticated stream ends with its status
	// before any message.
	if err := cs.RecvMsg(&emptypb.Empty{}); err != nil && !errors.Is(err, io.EOF) {
		return status.Code(err)
	}
	return codes.OK
}

package gateway

import (
	"io"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/pkg/httperr"
	"github.com/genailab/genailab/pkg/seedjson"
)

// streamMarshaler is the gateway's JSON marshaler. It writes the error chunk of a
// server stream ({"error": <google.rpc.Status>} in grpc-gateway) as httperr's stream line,
// {"error": "...", "code": "...", "reason": "..."}, the same body as any other error; and
// the seed's image result (POST /v1/images/generations) with seedjson, the bytes the
// diffusion service's seed wrapper answers, its PNG base64-encoded straight into the body
// (protojson takes 2.5 times as long for a 256x256 image, BenchmarkSeedResultMarshal).
type streamMarshaler struct {
	*runtime.JSONPb
}

func (m *streamMarshaler) Marshal(v any) ([]byte, error) {
	switch v := v.(type) {
	case *orchestratorv1.CreateImageResponse:
		return seedjson.Append(nil, seedjson.Result{
			PNG: v.GetImage(), Format: v.GetFormat(), TimeTakenMs: int64(v.GetTimeTakenMs()),
			Seed: int64(v.GetSeed()), Width: int64(v.GetWidth()), Height: int64(v.GetHeight()),
		}), nil
	case map[string]proto.Message:
		if len(v) == 1 {
			if p, ok := v["error"].(*spb.Status); ok {
				return httperr.From(status.FromProto(p).Err()).StreamLine(), nil
			}
		}
	}
	return m.JSONPb.Marshal(v)
}

// NewDecoder decodes a request body as exactly one JSON value: a decoder stops after the
// first value, and what followed it (`{"prompt":"x"}0`) was silently ignored. No RPC
// streams from the client, so a body is always one message.
func (m *streamMarshaler) NewDecoder(r io.Reader) runtime.Decoder {
	return oneValue{m.JSONPb.NewDecoder(r).(runtime.DecoderWrapper)}
}

// oneValue is a decoder of one JSON value and nothing after it but white space.
type oneValue struct{ runtime.DecoderWrapper }

func (d oneValue) Decode(v any) error {
	if err := d.DecoderWrapper.Decode(v); err != nil {
		return err // io.EOF stays io.EOF: an empty body is an empty request
	}
	return httperr.EndOfBody(d.Decoder)
}

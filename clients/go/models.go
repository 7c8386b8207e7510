package genailab

import (
	"context"
	"fmt"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	modelsv1 "github.com/genailab/genailab/gen/models/v1"
)

// ParseModelType reads "llm" or "diffusion" (case-insensitive; the enum names work too).
func ParseModelType(s string) (modelsv1.ModelType, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "llm", "model_type_llm":
		return modelsv1.ModelType_MODEL_TYPE_LLM, nil
	case "diffusion", "sd", "model_type_diffusion":
		return modelsv1.ModelType_MODEL_TYPE_DIFFUSION, nil
	}
	return modelsv1.ModelType_MODEL_TYPE_UNSPECIFIED, fmt.Errorf("unknown model type %q: want llm or diffusion", s)
}

// badTypeConn answers every call with InvalidArgument: no service stores models of its type.
type badTypeConn struct{ t modelsv1.ModelType }

func (b badTypeConn) err() error {
	return status.Errorf(codes.InvalidArgument, "no service stores models of type %s: want MODEL_TYPE_LLM or MODEL_TYPE_DIFFUSION", b.t)
}

func (b badTypeConn) Invoke(context.Context, string, any, any, ...grpc.CallOption) error {
	return b.err()
}

func (b badTypeConn) NewStream(context.Context, *grpc.StreamDesc, string, ...grpc.CallOption) (grpc.ClientStream, error) {
	return nil, b.err()
}

package cycle

import (
	"context"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	commonv1 "github.com/genailab/genailab/gen/common/v1"
	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	monitorv1 "github.com/genailab/genailab/gen/monitor/v1"
)

var monitorUsageReq = &monitorv1.GetUsageRequest{}

// startOnce makes one start attempt, restoring the slot files saved at the offload. A server
// that is already running and healthy (someone else started it) counts as success (nothing is
// restored then).
func (c *Cycle) startOnce(ctx context.Context, cfg *llmv1.LLMConfig, slotFiles []string) (*llmv1.LLMInfo, *llmv1.SlotRestore, error) {
	resp, err := c.c.LLM.Start(ctx, &llmv1.StartRequest{Config: cfg, ReadyTimeoutMs: c.o.ReadyTimeout.Milliseconds(), RestoreSlotFiles: slotFiles})
	if err == nil {
		return resp.GetInfo(), resp.GetSlotRestore(), nil
	}
	if status.Code(err) != codes.FailedPrecondition {
		return nil, nil, err
	}
	gi, gerr := c.c.LLM.GetInfo(ctx, &llmv1.GetInfoRequest{})
	if gerr != nil {
		return nil, nil, fmt.Errorf("%w (and asking for its state failed: %v)", err, gerr)
	}
	info := gi.GetInfo()
	if info.GetStatus() == commonv1.ServerStatus_SERVER_STATUS_RUNNING && info.GetHealth() == commonv1.HealthStatus_HEALTH_STATUS_OK {
		return info, nil, nil
	}
	return nil, nil, fmt.Errorf("%w: %v (status %s)", errNotHealthy, err, info.GetStatus())
}

func isPortProblem(err error) bool {
	s := strings.ToLower(err.Error())
	return strings.Contains(s, "port") && (strings.Contains(s, "in use") || strings.Contains(s, "bind"))
}

func cloneConfig(c *llmv1.LLMConfig) *llmv1.LLMConfig { return proto.Clone(c).(*llmv1.LLMConfig) }

func freeOf(u *monitorv1.Usage, gpu int) uint64 {
	if gpu >= 0 {
		for _, g := range u.GetGpus() {
			if int(g.GetIndex()) == gpu {
				return g.GetMemoryFreeBytes()
			}
		}
	}
	return u.GetMemory().GetAvailableBytes()
}

package server

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	commonv1 "github.com/genailab/genailab/gen/common/v1"
	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/pkg/grpcerr"
)

// CreateImage is the seed's synchronous contract: the same queue and offload cycle as
// GenerateImage, answering only the result. A caller that goes away cancels its job (and
// the LLM is still reloaded).
func (s *Service) CreateImage(ctx context.Context, req *orchestratorv1.CreateImageRequest) (*orchestratorv1.CreateImageResponse, error) {
	params := &diffusionv1.ImageParams{
		Prompt: req.Prompt, NegativePrompt: req.NegativePrompt, Width: req.Width, Height: req.Height,
		Steps: req.Steps, CfgScale: req.CfgScale, Seed: req.Seed, Sampler: req.Sampler,
	}
	if req.Seed != nil && *req.Seed > math.MaxUint32 {
		return nil, grpcerr.Status(grpcerr.Invalidf("seed must be at most %d (or negative for a random seed), got %d", uint64(math.MaxUint32), *req.Seed))
	}
	if err := s.supported(ctx, params, ""); err != nil { // the seed asks for no feature today
		return nil, errStatus(err)
	}
	job, err := s.jobs.Submit(params, "")
	if err != nil {
		return nil, errStatus(err)
	}
	last, err := s.jobs.Wait(ctx, job.GetId())
	if err != nil {
		s.abandon(job.GetId())
		return nil, errStatus(err)
	}
	if last.Err != nil || last.Result == nil {
		return nil, errStatus(outcomeErr(last))
	}
	res := last.Result
	return &orchestratorv1.CreateImageResponse{
		Image: res.Png, Format: "png", TimeTakenMs: uint32(min(max(res.TimeTakenMs, 0), math.MaxUint32)),
		Seed: uint32(res.Seed), Width: res.Width, Height: res.Height,
	}, nil
}

// HealthDetailHeader is the response header of GetHealth that describes what is wrong
// besides the image server: the orchestrator's database (found damaged and replaced at
// start, accesses that met a damaged file, unreadable records skipped) and, with a single
// host, an LLM that cannot serve (crash looping); absent when nothing is. The gateway
// relays it as Grpc-Metadata-Genailab-Health-Detail. The body keeps the seed's exact
// shape, {"status": "ok", "busy": ...}: its status is the image server's, which an LLM
// crash loop does not stop.
const HealthDetailHeader = "genailab-health-detail"

// llmHealthTimeout bounds the question to the LLM service within GetHealth: a slow or gone
// LLM service must not make the image server's health check slow.
const llmHealthTimeout = time.Second

// GetHealth is the seed's health check: ok, and whether an image is being generated
// (by the orchestrator's worker, or directly on the diffusion engine). With one host it
// answers from the engines' state that the relay's WatchInfo streams keep current (busy
// flips with the diffusion engine's generation events), without a call to the services;
// only while the diffusion stream is not connected does it ask the services.
func (s *Service) GetHealth(ctx context.Context, _ *orchestratorv1.GetHealthRequest) (*orchestratorv1.GetHealthResponse, error) {
	var details []string
	if s.replica != nil {
		details = append(details, s.replica.healthDetail())
	}
	if d := s.db.HealthDetail(); d != "" {
		details = append(details, d)
	}
	if !s.single {
		setHealthDetail(ctx, details)
		return &orchestratorv1.GetHealthResponse{Status: "ok", Busy: s.jobs.Busy()}, nil
	}
	if s.live != nil {
		if diff, ok := s.live.Diffusion(); ok {
			if llm, ok := s.live.LLM(); ok {
				if d := llmDetail(llm); d != "" {
					details = append(details, d)
				}
			}
			setHealthDetail(ctx, details)
			return &orchestratorv1.GetHealthResponse{Status: "ok", Busy: s.jobs.Busy() || diff.GetBusy()}, nil
		}
	}
	h := s.reg.Hosts()[0]
	lctx, cancel := context.WithTimeout(ctx, llmHealthTimeout)
	llm := make(chan string, 1)
	go func() { llm <- llmHealthDetail(lctx, h.Clients.LLM) }()
	info, err := h.Clients.Diffusion.GetInfo(ctx, &diffusionv1.GetInfoRequest{})
	d := <-llm
	cancel()
	if d != "" {
		details = append(details, d)
	}
	setHealthDetail(ctx, details)
	if err != nil {
		return nil, grpcerr.Status(fmt.Errorf("ask diffusion service: %w", err))
	}
	return &orchestratorv1.GetHealthResponse{Status: "ok", Busy: s.jobs.Busy() || info.GetInfo().GetBusy()}, nil
}

// llmHealthDetail is what GetHealth says about the LLM: its error while its health is
// ERROR (crash looping, with the last exit and the next attempt), else nothing. An LLM
// service that does not answer in time is not the image server's failure: nothing either.
func llmHealthDetail(ctx context.Context, c llmv1.LLMServiceClient) string {
	r, err := c.GetInfo(ctx, &llmv1.GetInfoRequest{})
	if err != nil {
		return ""
	}
	return llmDetail(r.GetInfo())
}

// llmDetail is the health detail of an LLM whose health is ERROR, else "".
func llmDetail(info *llmv1.LLMInfo) string {
	if info.GetHealth() != commonv1.HealthStatus_HEALTH_STATUS_ERROR {
		return ""
	}
	msg, _, _ := strings.Cut(info.GetLastError(), "\n")
	return "llm: " + cmp.Or(msg, "unhealthy")
}

func setHealthDetail(ctx context.Context, details []string) {
	if len(details) > 0 {
		_ = grpc.SetHeader(ctx, metadata.Pairs(HealthDetailHeader, headerSafe(strings.Join(details, "; "))))
	}
}

// headerSafe keeps a header value within printable ASCII, which gRPC metadata requires.
func headerSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, s)
}

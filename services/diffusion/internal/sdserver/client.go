// Package sdserver is a client of stable-diffusion.cpp's sd-server native async API:
// POST /sdcpp/v1/img_gen (202 with a job id), GET /sdcpp/v1/jobs/{id}, and
// POST /sdcpp/v1/jobs/{id}/cancel, plus building sd-server's command line.
package sdserver

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/genailab/genailab/pkg/imagereq"
	"github.com/genailab/genailab/services/diffusion/internal/sdargs"
)

// MaxSteps is the most sampling steps sd-server runs: it clamps sample_steps to 1..100.
const MaxSteps = 100

// Errors of the API.
var (
	// ErrQueueFull: 429, 64 jobs pending.
	ErrQueueFull = errors.New("sd-server job queue is full")
	// ErrGenerating: 409 to a cancel, the job is generating and cannot be interrupted.
	ErrGenerating = errors.New("sd-server cannot cancel a generating job")
	// ErrJobNotFound: 404 (unknown id) or 410 (expired).
	ErrJobNotFound = errors.New("sd-server job not found")
)

// Job statuses.
const (
	StatusQueued     = "queued"
	StatusGenerating = "generating"
	StatusCompleted  = "completed"
	StatusFailed     = "failed"
	StatusCancelled  = "cancelled"
)

// Job is sd-server's job JSON.
type Job struct {
	ID            string     `json:"id"`
	Status        string     `json:"status"`
	QueuePosition int        `json:"queue_position"`
	Created       *int64     `json:"created"`
	Started       *int64     `json:"started"`
	Completed     *int64     `json:"completed"`
	Error         *JobError  `json:"error"`
	Result        *JobResult `json:"result"`
}

// JobError explains a failed or cancelled job.
type JobError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// JobResult holds the images of a completed job.
type JobResult struct {
	Images []struct {
		B64JSON string `json:"b64_json"`
		Index   int    `json:"index"`
	} `json:"images"`
	OutputFormat string `json:"output_format"`
}

// Image decodes the first image.
func (j *Job) Image() ([]byte, error) {
	if j.Result == nil || len(j.Result.Images) == 0 {
		return nil, errors.New("completed job has no image")
	}
	b, err := base64.StdEncoding.DecodeString(j.Result.Images[0].B64JSON)
	if err != nil {
		return nil, fmt.Errorf("decode job image: %w", err)
	}
	return b, nil
}

// Images decodes every image of a completed job, in batch order (by index), checking that
// there are n of them.
func (j *Job) Images(n int) ([][]byte, error) {
	if j.Result == nil || len(j.Result.Images) != n {
		got := 0
		if j.Result != nil {
			got = len(j.Result.Images)
		}
		return nil, fmt.Errorf("completed job has %d images, want %d", got, n)
	}
	out := make([][]byte, n)
	for _, im := range j.Result.Images {
		if im.Index < 0 || im.Index >= n || out[im.Index] != nil {
			return nil, fmt.Errorf("completed job has an image with index %d (of %d)", im.Index, n)
		}
		b, err := base64.StdEncoding.DecodeString(im.B64JSON)
		if err != nil {
			return nil, fmt.Errorf("decode job image %d: %w", im.Index, err)
		}
		out[im.Index] = b
	}
	return out, nil
}

// Client talks to one sd-server.
type Client struct {
	Base string // http://127.0.0.1:PORT
	HTTP *http.Client
}

type guidance struct {
	TxtCfg float64 `json:"txt_cfg"`
}

type sampleParams struct {
	SampleSteps  int      `json:"sample_steps"`
	SampleMethod string   `json:"sample_method"`
	Guidance     guidance `json:"guidance"`
}

type imgGenRequest struct {
	Prompt         string       `json:"prompt"`
	NegativePrompt string       `json:"negative_prompt"`
	Width          int          `json:"width"`
	Height         int          `json:"height"`
	Seed           int64        `json:"seed"`
	BatchCount     int          `json:"batch_count"`
	OutputFormat   string       `json:"output_format"`
	SampleParams   sampleParams `json:"sample_params"`
	// An edit: the init image and mask as base64 of their files, and the strength
	// (master-827's img_gen; checked on the real sd-server: same pixels as sd-cli -i/--mask).
	InitImage string   `json:"init_image,omitempty"`
	MaskImage string   `json:"mask_image,omitempty"`
	Strength  *float64 `json:"strength,omitempty"`
}

// Body is the img_gen request body for p.
func Body(p imagereq.Params) ([]byte, error) {
	r := imgGenRequest{
		Prompt: p.Prompt, NegativePrompt: p.NegativePrompt,
		Width: p.Width, Height: p.Height, Seed: p.Seed, BatchCount: max(p.N, 1), OutputFormat: "png",
		SampleParams: sampleParams{SampleSteps: p.Steps, SampleMethod: p.Sampler, Guidance: guidance{TxtCfg: p.CFGScale}},
	}
	if e := p.Edit; e != nil {
		r.InitImage, r.Strength = base64.StdEncoding.EncodeToString(e.Image), &e.Strength
		if e.Mask != nil {
			r.MaskImage = base64.StdEncoding.EncodeToString(e.Mask)
		}
	}
	return json.Marshal(r)
}

// Submit queues a generation and returns its job id.
func (c *Client) Submit(ctx context.Context, p imagereq.Params) (string, error) {
	body, err := Body(p)
	if err != nil {
		return "", fmt.Errorf("encode img_gen request: %w", err)
	}
	var j Job
	if err := c.do(ctx, http.MethodPost, "/sdcpp/v1/img_gen", body, http.StatusAccepted, &j); err != nil {
		return "", fmt.Errorf("submit job: %w", err)
	}
	if j.ID == "" {
		return "", errors.New("submit job: sd-server returned no job id")
	}
	return j.ID, nil
}

// Job polls a job.
func (c *Client) Job(ctx context.Context, id string) (*Job, error) {
	var j Job
	if err := c.do(ctx, http.MethodGet, "/sdcpp/v1/jobs/"+url.PathEscape(id), nil, http.StatusOK, &j); err != nil {
		return nil, fmt.Errorf("poll job %s: %w", id, err)
	}
	return &j, nil
}

// Cancel cancels a queued job; a generating one gives ErrGenerating.
func (c *Client) Cancel(ctx context.Context, id string) (*Job, error) {
	var j Job
	if err := c.do(ctx, http.MethodPost, "/sdcpp/v1/jobs/"+url.PathEscape(id)+"/cancel", nil, http.StatusOK, &j); err != nil {
		return nil, fmt.Errorf("cancel job %s: %w", id, err)
	}
	return &j, nil
}

// Ping reports whether sd-server answers HTTP at all (it has no /health; GET / answers once
// it listens).
func (c *Client) Ping(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Base+"/", nil)
	if err != nil {
		return err
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode >= 500 {
		return fmt.Errorf("GET /: %s", resp.Status)
	}
	return nil
}

func (c *Client) do(ctx context.Context, method, path string, body []byte, want int, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return fmt.Errorf("read response: %w", err)
	}
	if resp.StatusCode != want {
		msg := apiError(data)
		switch resp.StatusCode {
		case http.StatusTooManyRequests:
			return fmt.Errorf("%w: %s", ErrQueueFull, msg)
		case http.StatusConflict:
			return fmt.Errorf("%w: %s", ErrGenerating, msg)
		case http.StatusNotFound, http.StatusGone:
			return fmt.Errorf("%w: %s", ErrJobNotFound, msg)
		}
		return fmt.Errorf("sd-server answered %s: %s", resp.Status, msg)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decode sd-server response: %w", err)
	}
	return nil
}

// apiError extracts {"error":"..."} (and "message") from an error body.
func apiError(data []byte) string {
	var e struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	if json.Unmarshal(data, &e) == nil && e.Error != "" {
		if e.Message != "" {
			return e.Error + ": " + e.Message
		}
		return e.Error
	}
	if len(data) > 200 {
		data = data[:200]
	}
	return strconv.Quote(string(data))
}

// Args builds sd-server's arguments: the model files, --listen-ip and --listen-port, -t when
// threads > 0, and the memory switches.
func Args(model sdargs.Model, mem sdargs.Memory, threads int, host string, port int) []string {
	a := model.Args()
	a = append(a, "--listen-ip", host, "--listen-port", strconv.Itoa(port))
	if threads > 0 {
		a = append(a, "-t", strconv.Itoa(threads))
	}
	return append(a, mem.Args()...)
}

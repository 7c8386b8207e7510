package gateway_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
)

// previewOrchestrator is a stand-in orchestrator whose GenerateImage stream sends one
// progress message with a preview, then the result.
type previewOrchestrator struct {
	orchestratorv1.UnimplementedOrchestratorServiceServer
}

func (previewOrchestrator) GenerateImage(r *orchestratorv1.GenerateImageRequest, s orchestratorv1.OrchestratorService_GenerateImageServer) error {
	msgs := []*orchestratorv1.GenerateImageResponse{
		{Payload: &orchestratorv1.GenerateImageResponse_JobId{JobId: "j1"}},
		{Payload: &orchestratorv1.GenerateImageResponse_Progress{Progress: &diffusionv1.Progress{
			Stage: diffusionv1.Stage_STAGE_SAMPLING, Step: 1, TotalSteps: 2,
			Preview: &diffusionv1.Preview{Png: []byte("preview of step 1"), Step: 1, Width: 8, Height: 8},
		}}},
		// An edit's result says how many init image bytes arrived (TestImageEditJSONUploadCap).
		{Payload: &orchestratorv1.GenerateImageResponse_Result{Result: &diffusionv1.ImageResult{Png: fmt.Appendf([]byte("image"), "%.0d", len(r.GetParams().GetInitImage())), Seed: r.GetParams().GetSeed()}}},
	}
	for _, m := range msgs {
		if err := s.Send(m); err != nil {
			return err
		}
	}
	return nil
}

// The seed contract's progress stream (NDJSON of GenerateImage) carries the previews the
// request asked for, as base64 in progress.preview.png.
func TestImageStreamCarriesPreviews(t *testing.T) {
	url := startGateway(t, previewOrchestrator{}, "")
	resp, err := http.Post(url+"/v1/images/generate", "application/json",
		strings.NewReader(`{"params":{"prompt":"a fox","steps":2,"seed":"3","preview":{"method":"PREVIEW_METHOD_PROJ"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var lines []map[string]map[string]any
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var m map[string]map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	if resp.StatusCode != 200 || len(lines) != 3 {
		t.Fatalf("%d %v", resp.StatusCode, lines)
	}
	pv, _ := lines[1]["result"]["progress"].(map[string]any)["preview"].(map[string]any)
	raw, _ := base64.StdEncoding.DecodeString(pv["png"].(string))
	if string(raw) != "preview of step 1" || pv["step"] != float64(1) {
		t.Fatalf("progress line %v", lines[1])
	}
}

// An image edit's multipart body has its own cap, above the JSON bodies' one: a 2 MiB
// upload reaches the edit's validation (400 with the reason), while a 2 MiB JSON body is
// refused with 413.
func TestImageEditUploadCap(t *testing.T) {
	url := startGateway(t, previewOrchestrator{}, "")
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	fw, _ := mw.CreateFormFile("image", "big.png")
	_, _ = fw.Write(bytes.Repeat([]byte("x"), 2<<20))
	_ = mw.WriteField("prompt", "a fox")
	_ = mw.Close()
	resp, err := http.Post(url+"/openai/v1/images/edits", mw.FormDataContentType(), &b)
	if err != nil {
		t.Fatal(err)
	}
	var e struct {
		Error struct{ Message string } `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(e.Error.Message, "image") {
		t.Fatalf("2 MiB edit: %d %+v, want 400 about the image", resp.StatusCode, e)
	}
	resp, err = http.Post(url+"/openai/v1/images/generations", "application/json",
		strings.NewReader(`{"prompt":"`+strings.Repeat("a", 2<<20)+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Fatalf("2 MiB JSON body: %d, want 413", resp.StatusCode)
	}
}

// The JSON image routes take an edit's uploads as base64, above the other JSON bodies' cap
// (the web panel sends edits to /v1/images/generate for its progress stream); a 1 MiB limit
// refused a 750 KiB image with 413. Other JSON routes keep their cap.
func TestImageEditJSONUploadCap(t *testing.T) {
	url := startGateway(t, previewOrchestrator{}, "")
	img := bytes.Repeat([]byte{0x89}, 3<<20)
	body := `{"params":{"prompt":"a fox","initImage":"` + base64.StdEncoding.EncodeToString(img) + `"}}`
	resp, err := http.Post(url+"/v1/images/generate", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "image%d", len(img)))
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(raw), want) {
		t.Fatalf("3 MiB init image as JSON: %d %.300s, want the stream with the result of %d bytes", resp.StatusCode, raw, len(img))
	}
	resp, err = http.Post(url+"/v1/llm/chat", "application/json", strings.NewReader(`{"messages":[{"role":"user","content":"`+strings.Repeat("a", 2<<20)+`"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("2 MiB chat body: %d, want 413", resp.StatusCode)
	}
}

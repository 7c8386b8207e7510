package openai_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
)

// sseEvent is one server-sent event.
type sseEvent struct {
	typ  string
	data map[string]any
}

// readSSE reads every event of a stream, checking the SSE framing: "event:" then one
// "data:" line, a blank line after each, comment lines allowed.
func readSSE(t *testing.T, body io.Reader) []sseEvent {
	t.Helper()
	var out []sseEvent
	var cur sseEvent
	sc := bufio.NewScanner(body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.typ != "" || cur.data != nil {
				out = append(out, cur)
			}
			cur = sseEvent{}
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "event: "):
			cur.typ = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &cur.data); err != nil {
				t.Fatalf("data line %q: %v", line, err)
			}
		default:
			t.Fatalf("not an SSE line: %q", line)
		}
	}
	return out
}

func postStream(t *testing.T, url, body string) (*http.Response, []sseEvent) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		raw, _ := io.ReadAll(resp.Body)
		t.Fatalf("%s: %d %q: %s", body, resp.StatusCode, ct, raw)
	}
	return resp, readSSE(t, resp.Body)
}

// With "stream": true and partial_images 2, each image's two partial images (the
// previews, spread over the steps) come before its completed event, in OpenAI's shape.
func TestImagesStreamPartialImages(t *testing.T) {
	srv, o, _ := serve(t)
	_, events := postStream(t, srv.URL+"/openai/v1/images/generations",
		`{"prompt":"a fox","stream":true,"partial_images":2,"steps":4,"size":"128x64","seed":5}`)
	var types []string
	for _, e := range events {
		types = append(types, e.typ)
		if e.data["type"] != e.typ {
			t.Errorf("event %q has type %v", e.typ, e.data["type"])
		}
		for _, k := range []string{"b64_json", "created_at", "size", "background", "output_format", "quality"} {
			if _, ok := e.data[k]; !ok {
				t.Errorf("%s has no %s: %v", e.typ, k, e.data)
			}
		}
	}
	want := "[image_generation.partial_image image_generation.partial_image image_generation.completed]"
	if fmt.Sprint(types) != want {
		t.Fatalf("events %v, want %s", types, want)
	}
	for i, e := range events[:2] {
		raw, _ := base64.StdEncoding.DecodeString(e.data["b64_json"].(string))
		// steps 4, 2 partial images: from step ceil(4/3)=2 and ceil(8/3)=3.
		if e.data["partial_image_index"] != float64(i) || string(raw) != fmt.Sprintf("preview %d of image 0", i+2) ||
			e.data["size"] != "128x64" || e.data["output_format"] != "png" {
			t.Errorf("partial %d: %v (%q)", i, e.data, raw)
		}
	}
	done := events[2].data
	raw, _ := base64.StdEncoding.DecodeString(done["b64_json"].(string))
	var img map[string]float64
	_ = json.Unmarshal(raw, &img)
	u, _ := done["usage"].(map[string]any)
	if img["seed"] != 5 || img["w"] != 128 || u == nil || u["total_tokens"] != float64(0) || u["input_tokens_details"] == nil {
		t.Fatalf("completed %v (image %v)", done, img)
	}
	if _, ok := done["partial_image_index"]; ok {
		t.Fatalf("completed has a partial_image_index: %v", done)
	}
	if pv := o.got[0].GetPreview(); pv.GetMethod().String() != "PREVIEW_METHOD_PROJ" || pv.GetInterval() != 1 {
		t.Fatalf("preview asked for: %v", pv)
	}
}

// partial_images 0 asks for no previews: the stream is the completed events, one per
// image of the batch (one job).
func TestImagesStreamNoPartials(t *testing.T) {
	srv, o, _ := serve(t)
	_, events := postStream(t, srv.URL+"/openai/v1/images/generations", `{"prompt":"a fox","stream":true,"partial_images":0,"n":3,"seed":1}`)
	if len(events) != 3 {
		t.Fatalf("events %v", events)
	}
	for i, e := range events {
		raw, _ := base64.StdEncoding.DecodeString(e.data["b64_json"].(string))
		var img map[string]float64
		_ = json.Unmarshal(raw, &img)
		if e.typ != "image_generation.completed" || img["seed"] != float64(1+i) {
			t.Errorf("event %d: %s %v", i, e.typ, img)
		}
	}
	if len(o.got) != 1 || o.got[0].GetPreview() != nil || o.got[0].GetN() != 3 {
		t.Fatalf("orchestrator got %v", o.got)
	}
}

// partial_images outside 0-3, or without stream, is a 400 with the reason, and nothing
// reaches the orchestrator; a refusal of the orchestrator keeps its status (no stream).
func TestImagesStreamRefusals(t *testing.T) {
	srv, o, _ := serve(t)
	for body, want := range map[string]string{
		`{"prompt":"x","stream":true,"partial_images":7}`:  "partial_images must be between 0 and 3, got 7",
		`{"prompt":"x","stream":true,"partial_images":-1}`: "partial_images must be between 0 and 3, got -1",
		`{"prompt":"x","partial_images":2}`:                `partial_images 2 needs "stream": true`,
		`{"prompt":"x","stream":true,"n":0}`:               "n must be within 1-8, got 0",
		`{"prompt":"x","stream":true,"steps":0}`:           "steps must be within 1-150, got 0",
	} {
		resp, e := postOpenAI(t, srv.URL+"/openai/v1/images/generations", body)
		if resp.StatusCode != 400 || !strings.Contains(e.Error.Message, want) || e.Error.Type != "invalid_request_error" {
			t.Errorf("%s: %d %+v, want 400 %q", body, resp.StatusCode, e, want)
		}
	}
	if len(o.got) != 0 {
		t.Fatalf("the orchestrator was called for refused requests: %v", o.got)
	}
	o.full = true
	resp, e := postOpenAI(t, srv.URL+"/openai/v1/images/generations", `{"prompt":"x","stream":true,"partial_images":1}`)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "3" || e.Error.Code != "queue_full" {
		t.Fatalf("full queue: %d %+v", resp.StatusCode, e)
	}
}

// An error after the stream started ends it with an error event holding OpenAI's error
// object (the SDKs' iterators return it).
func TestImagesStreamErrorEvent(t *testing.T) {
	srv, _, _ := serve(t)
	_, events := postStream(t, srv.URL+"/openai/v1/images/generations", `{"prompt":"fail mid-stream","stream":true,"partial_images":3,"steps":6}`)
	if len(events) == 0 {
		t.Fatal("no events")
	}
	last := events[len(events)-1]
	e, _ := last.data["error"].(map[string]any)
	if last.typ != "error" || e["message"] != "the engine went away" || e["code"] != "engine_went_away" {
		t.Fatalf("last event %v", last)
	}
}

// testPNG is a w x h PNG of one colour.
func testPNG(t *testing.T, w, h int, c color.Color) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, c)
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// multipartBody builds a form: files (field → bytes) and text fields.
func multipartBody(t *testing.T, files map[string][]byte, fields map[string]string) (*bytes.Buffer, string) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for name, data := range files {
		fw, err := mw.CreateFormFile(name, name+".png")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = fw.Write(data)
	}
	for k, v := range fields {
		_ = mw.WriteField(k, v)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return &b, mw.FormDataContentType()
}

func postEdit(t *testing.T, url string, files map[string][]byte, fields map[string]string) (*http.Response, []byte) {
	t.Helper()
	body, ct := multipartBody(t, files, fields)
	resp, err := http.Post(url, ct, body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp, raw
}

// An edit relays the uploaded image, mask and strength to the orchestrator, n images as
// one batch, and answers OpenAI's images response; with "stream" the image_edit events.
func TestImagesEdits(t *testing.T) {
	srv, o, _ := serve(t)
	img, mask := testPNG(t, 64, 128, color.White), testPNG(t, 64, 128, color.Black)
	resp, raw := postEdit(t, srv.URL+"/openai/v1/images/edits", map[string][]byte{"image": img, "mask": mask},
		map[string]string{"prompt": "a red door", "n": "2", "size": "64x128", "response_format": "b64_json", "strength": "0.4", "steps": "3", "seed": "9"})
	var out struct {
		Created int64 `json:"created"`
		Data    []struct {
			B64JSON string `json:"b64_json"`
		} `json:"data"`
	}
	if err := json.Unmarshal(raw, &out); err != nil || resp.StatusCode != 200 || len(out.Data) != 2 || out.Created == 0 {
		t.Fatalf("%d %s", resp.StatusCode, raw)
	}
	if len(o.got) != 1 {
		t.Fatalf("%d orchestrator calls", len(o.got))
	}
	p := o.got[0]
	if !bytes.Equal(p.GetInitImage(), img) || !bytes.Equal(p.GetMask(), mask) || p.GetStrength() != 0.4 || p.GetN() != 2 ||
		p.GetSteps() != 3 || p.GetSeed() != 9 || p.GetWidth() != 64 || p.GetHeight() != 128 || p.GetPrompt() != "a red door" {
		t.Fatalf("relayed %v", p)
	}
	// The image's own size when size is left out; the stream's events are image_edit.*.
	body, ct := multipartBody(t, map[string][]byte{"image": img}, map[string]string{"prompt": "a door", "stream": "true", "partial_images": "1", "steps": "2"})
	r, err := http.Post(srv.URL+"/openai/v1/images/edits", ct, body)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	events := readSSE(t, r.Body)
	if len(events) != 2 || events[0].typ != "image_edit.partial_image" || events[1].typ != "image_edit.completed" || events[0].data["size"] != "64x128" {
		t.Fatalf("edit stream %v", events)
	}
}

// Bad uploads are refused with 400 and the reason before the orchestrator is called.
func TestImagesEditsRefusals(t *testing.T) {
	srv, o, _ := serve(t)
	img := testPNG(t, 64, 64, color.White)
	for name, c := range map[string]struct {
		files  map[string][]byte
		fields map[string]string
		want   string
	}{
		"no image":          {nil, map[string]string{"prompt": "x"}, "image is required"},
		"image as text":     {nil, map[string]string{"prompt": "x", "image": "abc"}, "image must be a file upload"},
		"not an image":      {map[string][]byte{"image": []byte("hello, not a picture")}, map[string]string{"prompt": "x"}, "image"},
		"mask of a size":    {map[string][]byte{"image": img, "mask": testPNG(t, 128, 64, color.Black)}, map[string]string{"prompt": "x"}, "mask"},
		"mask not an image": {map[string][]byte{"image": img, "mask": []byte("GIF89a")}, map[string]string{"prompt": "x"}, "mask"},
		"no prompt":         {map[string][]byte{"image": img}, nil, "prompt"},
		"n 0":               {map[string][]byte{"image": img}, map[string]string{"prompt": "x", "n": "0"}, "n must be within 1-8, got 0"},
		"n not a number":    {map[string][]byte{"image": img}, map[string]string{"prompt": "x", "n": "two"}, `n "two": want a whole number`},
		"strength 2":        {map[string][]byte{"image": img}, map[string]string{"prompt": "x", "strength": "2"}, "strength"},
		"partial_images 7":  {map[string][]byte{"image": img}, map[string]string{"prompt": "x", "stream": "true", "partial_images": "7"}, "partial_images must be between 0 and 3, got 7"},
	} {
		resp, raw := postEdit(t, srv.URL+"/openai/v1/images/edits", c.files, c.fields)
		var e openAIError
		_ = json.Unmarshal(raw, &e)
		if resp.StatusCode != 400 || !strings.Contains(e.Error.Message, c.want) || e.Error.Type != "invalid_request_error" {
			t.Errorf("%s: %d %s, want 400 %q", name, resp.StatusCode, raw, c.want)
		}
	}
	resp, e := postOpenAI(t, srv.URL+"/openai/v1/images/edits", `{"prompt":"x"}`)
	if resp.StatusCode != 400 || !strings.Contains(e.Error.Message, "multipart/form-data") {
		t.Errorf("JSON body: %d %+v", resp.StatusCode, e)
	}
	if len(o.got) != 0 {
		t.Fatalf("the orchestrator was called for refused edits: %v", o.got)
	}
}

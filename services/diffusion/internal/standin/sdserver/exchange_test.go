package sdserver

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"image/png"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/genailab/genailab/services/diffusion/internal/standin/sdimage"
)

func jsonUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(v)
}

// exchange is one captured `.http` file.
type exchange struct {
	name         string
	method, path string
	body         []byte
	status       int
	header       http.Header
	respBody     []byte
}

func loadExchange(t *testing.T, name string) exchange {
	t.Helper()
	raw := readRef(t, "server/"+name+".http")
	reqPart, respPart, ok := bytes.Cut(raw, []byte("\n--- response ---\n"))
	if !ok {
		t.Fatalf("%s: no response marker", name)
	}
	ex := exchange{name: name, header: http.Header{}}
	reqHead, reqBody, _ := bytes.Cut(reqPart, []byte("\n\n"))
	line := strings.Fields(strings.SplitN(string(reqHead), "\n", 2)[0])
	ex.method, ex.path = line[0], line[1]
	if ex.method == "POST" {
		ex.body = bytes.TrimSuffix(reqBody, []byte("\n"))
	}
	respHead, respBody, _ := bytes.Cut(respPart, []byte("\n\n"))
	lines := strings.Split(string(respHead), "\n")
	fmt.Sscanf(lines[0], "HTTP/1.1 %d", &ex.status)
	for _, l := range lines[1:] {
		k, v, _ := strings.Cut(l, ": ")
		ex.header.Add(k, v)
	}
	ex.respBody = respBody
	return ex
}

var jobID = regexp.MustCompile(`job_[0-9a-f]+_([0-9a-f]{8})`)

// normalize makes a JSON body comparable across runs: times and the time part of job ids are
// masked, and each base64 PNG becomes its size (plus its parameters text when whole).
func normalize(t *testing.T, body []byte, withParams bool) any {
	t.Helper()
	var v any
	if err := jsonUnmarshal(body, &v); err != nil {
		t.Fatalf("not JSON: %q", body[:min(len(body), 200)])
	}
	return walk(t, "", v, withParams)
}

func walk(t *testing.T, key string, v any, withParams bool) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			out[k] = walk(t, k, e, withParams)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			k := key
			if key != "images" {
				k = ""
			}
			out[i] = walk(t, k, e, withParams)
		}
		return out
	case json.Number:
		switch key {
		case "created", "started", "completed":
			return "<time>"
		}
		return x.String()
	case string:
		switch key {
		case "b64_json", "images":
			return describePNG(t, x, withParams)
		case "info":
			var inner any
			if err := jsonUnmarshal([]byte(x), &inner); err == nil {
				return walk(t, "", inner, withParams)
			}
		}
		return jobID.ReplaceAllString(x, "job_T_$1")
	}
	return v
}

func describePNG(t *testing.T, b64 string, withParams bool) string {
	prefix, truncated := b64, false
	if i := strings.Index(b64, "...[TRUNCATED"); i >= 0 {
		prefix, truncated = b64[:i], true
	}
	data, err := base64.StdEncoding.DecodeString(prefix[:len(prefix)/4*4])
	if err != nil || len(data) < 24 || string(data[12:16]) != "IHDR" {
		return "not a PNG"
	}
	desc := fmt.Sprintf("PNG %dx%d", binary.BigEndian.Uint32(data[16:]), binary.BigEndian.Uint32(data[20:]))
	if truncated || !withParams {
		return desc
	}
	if _, err := png.Decode(bytes.NewReader(data)); err != nil {
		return "corrupt PNG"
	}
	chunks, _ := sdimage.TextChunks(data)
	return desc + " params=" + chunks["parameters"]
}

// headersThatMatter are compared with the capture.
var headersThatMatter = []string{"Connection", "Keep-Alive", "Content-Type", "Access-Control-Allow-Origin",
	"Access-Control-Allow-Credentials", "Access-Control-Allow-Methods", "Access-Control-Allow-Headers"}

// check compares a response with a captured exchange.
func check(t *testing.T, ex exchange, got response) {
	t.Helper()
	if got.status != ex.status {
		t.Errorf("%s: status %d, want %d (body %q)", ex.name, got.status, ex.status, got.body[:min(len(got.body), 200)])
		return
	}
	for _, h := range headersThatMatter {
		if g, w := got.header.Get(h), ex.header.Get(h); g != w {
			t.Errorf("%s: header %s = %q, want %q", ex.name, h, g, w)
		}
	}
	if got.header.Get("Date") != "" {
		t.Errorf("%s: has a Date header", ex.name)
	}
	// Go never sends Content-Length on a 204; the capture has `Content-Length: 0`.
	if cl := got.header.Get("Content-Length"); ex.status != http.StatusNoContent && cl != fmt.Sprint(len(got.body)) {
		t.Errorf("%s: Content-Length %q for %d bytes", ex.name, cl, len(got.body))
	}
	if len(ex.respBody) == 0 || ex.header.Get("Content-Type") != "application/json" {
		if !bytes.Equal(got.body, ex.respBody) {
			t.Errorf("%s: body %q, want %q", ex.name, got.body, ex.respBody)
		}
		return
	}
	withParams := !bytes.Contains(ex.respBody, []byte("...[TRUNCATED"))
	g, w := normalize(t, got.body, withParams), normalize(t, ex.respBody, withParams)
	if gs, ws := canonical(g), canonical(w); gs != ws {
		t.Errorf("%s: body differs from the capture\n got %s\nwant %s", ex.name, clip(gs), clip(ws))
	}
}

func canonical(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func clip(s string) string {
	if len(s) > 1500 {
		return s[:1500] + "..."
	}
	return s
}

package sdserver

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/genailab/genailab/services/diffusion/internal/standin/sdimage"
)

// reply writes a response with the headers cpp-httplib and sd-server send: CORS on every
// response, `Keep-Alive: timeout=5, max=100` on 2xx, `Connection: close` on errors (which also
// closes the connection), an explicit Content-Length, and no Date.
func reply(w http.ResponseWriter, r *http.Request, status int, contentType string, body []byte) {
	h := w.Header()
	h["Date"] = nil
	origin := r.Header.Get("Origin")
	if origin == "" {
		origin = "*"
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Credentials", "true")
	h.Set("Access-Control-Allow-Methods", "*")
	h.Set("Access-Control-Allow-Headers", "*")
	if status >= 400 {
		h.Set("Connection", "close")
	} else {
		h.Set("Keep-Alive", "timeout=5, max=100")
	}
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// marshal encodes v as nlohmann::json dumps it: sorted keys, no spaces, no HTML escaping.
func marshal(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return []byte(`{"error":"server_error"}`)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

func replyJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	reply(w, r, status, "application/json", marshal(v))
}

func replyError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	replyJSON(w, r, status, map[string]any{"error": msg})
}

// nfloat is a float that marshals as nlohmann writes a float32 (7 as 7.0).
type nfloat float32

func (f nfloat) MarshalJSON() ([]byte, error) { return []byte(sdimage.JSONFloat(float32(f))), nil }

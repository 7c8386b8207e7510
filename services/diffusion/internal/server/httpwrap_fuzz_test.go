package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Issue 14's fault suite, the diffusion service's seed HTTP wrapper: any body POSTed over
// real HTTP to a running service (Run, its engine not started). An invalid request is 400
// with the seed's {"error": "<reason>"}; a valid one reaches the engine, which is not
// running: 503 with the same shape, saying so. Nothing else: no 5xx but that 503,
// no other shape. The corpus is in testdata/fuzz.
func FuzzSeedWrapperGenerate(f *testing.F) {
	for _, s := range []string{
		`{"prompt":"a red fox in the snow","negativePrompt":"blurry","width":1024,"height":1024,"steps":30,"cfgScale":7.5,"seed":12345,"sampler":"dpm++2m"}`,
		`{"prompt":"x"}`,
		`{"prompt":"x","width":0,"height":0,"steps":0}`,
		`{"prompt":"x","seed":0,"cfgScale":0}`,
		`{"prompt":"x","seed":4294967296}`, `{"prompt":"x","seed":-1}`, `{"prompt":"x","seed":1e400}`,
		`{"prompt":"x","width":99999999999999999999}`, `{"prompt":"x","steps":-9223372036854775808}`,
		`{"prompt":"x","cfgScale":1e308}`, `{"prompt":"x","cfgScale":"NaN"}`,
		`{"prompt":"nul\u0000"}`, "{\"prompt\":\"\xff\xfe\"}", `{"prompt":"\ud800"}`,
		`{"prompt":"x","unknownField":1}`, `{"prompt":null}`, `{"prompt":"x","sampler":"EULER"}`,
		`[1,2]`, `null`, ``, `{`, `"x"`, `{"prompt":{"a":1}}`, `{"prompt":"x"} trailing`,
	} {
		f.Add([]byte(s))
	}
	s := startService(f, nil)
	url := s.httpURL + "/v1/images/generations"
	f.Fuzz(func(t *testing.T, body []byte) {
		resp, err := http.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		var e map[string]any
		if err := json.Unmarshal(b.Bytes(), &e); err != nil || len(e) != 1 {
			t.Fatalf("%d: not {\"error\": ...}: %s", resp.StatusCode, b.Bytes())
		}
		if msg, ok := e["error"].(string); !ok || strings.TrimSpace(msg) == "" {
			t.Fatalf("%d: error without a reason: %s", resp.StatusCode, b.Bytes())
		}
		switch resp.StatusCode {
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		case http.StatusServiceUnavailable:
			if !json.Valid(body) || !strings.Contains(e["error"].(string), "not running") {
				t.Fatalf("503 that is not the stopped engine: %s", b.Bytes())
			}
		default:
			t.Fatalf("status %d for %q: %s", resp.StatusCode, body, b.Bytes())
		}
	})
}

// TestSeedWrapperGoldenRequestReachesTheEngine pins the fuzz target's oracle: the seed's
// golden request is valid (503: the engine is not running), one without a prompt is not.
func TestSeedWrapperGoldenRequestReachesTheEngine(t *testing.T) {
	s := startService(t, nil)
	for body, want := range map[string]int{
		`{"prompt":"a red fox in the snow","negativePrompt":"blurry","width":1024,"height":1024,"steps":30,"cfgScale":7.5,"seed":12345,"sampler":"dpm++2m"}`: 503,
		`{"prompt":"x","width":65}`: 400,
		`{"prompt":""}`:             400,
	} {
		resp, err := http.Post(s.httpURL+"/v1/images/generations", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: %d, want %d", body, resp.StatusCode, want)
		}
	}
}

// Regression (issue 14's fault suite; found on the gateway's JSON edges, the same decoder
// here): a body with data after its JSON object, `{"prompt":"x"}0`, was read as
// `{"prompt":"x"}` and generated. Now it is 400 with the seed's error, before the engine
// is asked; trailing white space stays fine.
func TestSeedWrapperTrailingDataIs400(t *testing.T) {
	h := (&httpWrapper{}).handler()
	for _, tail := range []string{"0", " {}", `"x"`, "}", " garbage"} {
		a := seedDo(t, h, httptest.NewRequest("POST", "/v1/images/generations", strings.NewReader(`{"prompt":"x"}`+tail)))
		if a.status != 400 || !isSeedError(a) || !strings.Contains(fmt.Sprint(a.body["error"]), "after the JSON body") {
			t.Errorf("%q: %+v", tail, a)
		}
	}
	s := startService(t, nil)
	resp, err := http.Post(s.httpURL+"/v1/images/generations", "application/json", strings.NewReader("{\"prompt\":\"x\"} \n\t"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("trailing white space: %d, want 503 (valid; the engine is not running)", resp.StatusCode)
	}
}

package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	"github.com/genailab/genailab/pkg/grpcerr"
	"github.com/genailab/genailab/pkg/grpcserver"
	"github.com/genailab/genailab/pkg/httperr"
	"github.com/genailab/genailab/services/diffusion/internal/enginerr"
)

// seedAnswer is a wrapper answer: status, Retry-After and the JSON body, which must be the
// seed's exact error shape, {"error": "..."}.
type seedAnswer struct {
	status     int
	retryAfter string
	allow      string
	body       map[string]any
}

func seedDo(t *testing.T, h http.Handler, req *http.Request) seedAnswer {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	a := seedAnswer{status: w.Code, retryAfter: w.Header().Get("Retry-After"), allow: w.Header().Get("Allow")}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q, body %q", req.Method, req.URL, ct, w.Body.String())
	}
	if err := json.Unmarshal(w.Body.Bytes(), &a.body); err != nil {
		t.Fatalf("%s %s: not JSON: %q", req.Method, req.URL, w.Body.String())
	}
	return a
}

func isSeedError(a seedAnswer) bool {
	msg, ok := a.body["error"].(string)
	return ok && msg != "" && len(a.body) == 1
}

// Issue 14 item 12: unknown routes and wrong methods answered in plain text.
func TestSeedWrapper404And405AreJSON(t *testing.T) {
	h := (&httpWrapper{}).handler()
	if a := seedDo(t, h, httptest.NewRequest("GET", "/v1/nope", nil)); a.status != 404 || !isSeedError(a) {
		t.Errorf("unknown route: %+v", a)
	}
	if a := seedDo(t, h, httptest.NewRequest("GET", "/v1/images/generations", nil)); a.status != 405 || !isSeedError(a) || a.allow != "POST" {
		t.Errorf("GET generations: %+v", a)
	}
	if a := seedDo(t, h, httptest.NewRequest("POST", "/health", nil)); a.status != 405 || !isSeedError(a) || a.allow != "GET, HEAD" {
		t.Errorf("POST health: %+v", a)
	}
}

// zeros is an endless body.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	return len(p), nil
}

// Issue 14 item 12: a 50 MB body was cut at 1 MiB and answered 400 (invalid JSON).
func TestSeedWrapper413OnOversizedBody(t *testing.T) {
	srv := httptest.NewServer((&httpWrapper{}).handler())
	defer srv.Close()
	post := func(body io.Reader, length int64) (int, map[string]any) {
		req, _ := http.NewRequest("POST", srv.URL+"/v1/images/generations", body)
		req.ContentLength = length
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	// Announced by Content-Length: refused before reading.
	big := io.MultiReader(strings.NewReader(`{"prompt":"`), io.LimitReader(zeros{}, 50<<20), strings.NewReader(`"}`))
	if st, out := post(big, 50<<20+13); st != 413 || len(out) != 1 || !strings.Contains(fmt.Sprint(out["error"]), "too large") {
		t.Errorf("50 MB with Content-Length: %d %v", st, out)
	}
	// Chunked: told by the reader's *http.MaxBytesError.
	chunked := io.MultiReader(strings.NewReader(`{"prompt":"`), io.LimitReader(zeros{}, 2<<20), strings.NewReader(`"}`))
	if st, out := post(chunked, -1); st != 413 || len(out) != 1 || !strings.Contains(fmt.Sprint(out["error"]), "too large") {
		t.Errorf("2 MB chunked: %d %v", st, out)
	}
}

// Issue 14 item 12: a URL that is not valid UTF-8 got a 500.
func TestSeedWrapperInvalidUTF8QueryIs400(t *testing.T) {
	h := (&httpWrapper{}).handler()
	for _, target := range []string{"/v1/images/generations?x=%ff", "/health?%c3%28=1", "/v1/%ff"} {
		method := "POST"
		if strings.HasPrefix(target, "/health") {
			method = "GET"
		}
		if a := seedDo(t, h, httptest.NewRequest(method, target, strings.NewReader(`{"prompt":"x"}`))); a.status != 400 || !isSeedError(a) {
			t.Errorf("%s %s: %+v", method, target, a)
		}
	}
}

// Issue 13: the seed wrapper (the domain error, through the service's rules) and the gateway
// (the same error after the gRPC hops, diffusion service → orchestrator → gateway) answer the
// same status, reason and Retry-After for every rule. FailedPrecondition ("not running") was
// 503 here and 400 through the gateway.
func TestSeedWrapperAndGatewayAgreeOnEveryRule(t *testing.T) {
	for _, r := range rules {
		domain := fmt.Errorf("generate: %w", r.Target)
		wrapper := httperr.From(domain, rules...)
		relayed := grpcerr.Status(fmt.Errorf("ask diffusion service: %w", grpcerr.Status(domain, rules...))) // the orchestrator
		gateway := httperr.From(relayed)
		if wrapper.Status != gateway.Status || wrapper.Reason != gateway.Reason || wrapper.RetryAfter != gateway.RetryAfter || wrapper.Code != gateway.Code {
			t.Errorf("%v: wrapper %+v, gateway %+v", r.Target, wrapper, gateway)
		}
		// The code's status, but for the one reason with its own (UNSUPPORTED_IN_MODE: 400).
		if want := httperr.FromInfo(grpcerr.Info{Code: r.Code, Reason: r.Reason}).Status; wrapper.Status != want {
			t.Errorf("%v: status %d for %v %s, want %d", r.Target, wrapper.Status, r.Code, r.Reason, want)
		}
	}
	if e := httperr.From(fmt.Errorf("%w (stopped): start it first", enginerr.ErrNotRunning), rules...); e.Status != 503 || e.Reason != grpcerr.ReasonEngineNotRunning {
		t.Errorf("not running: %+v", e)
	}
	if e := httperr.From(fmt.Errorf("generate: %w", enginerr.ErrUnsupported), rules...); e.Status != 400 || e.Reason != grpcerr.ReasonUnsupportedInMode || e.RetryAfter != 0 {
		t.Errorf("unsupported in mode: %+v", e)
	}
	if e := httperr.From(enginerr.ErrBusy, rules...); e.Status != 503 || e.Message != "Server is busy generating another image" || e.RetryAfter <= 0 {
		t.Errorf("busy: %+v", e)
	}
}

// Issue 14 item 12: a shutdown while a seed request generates answered 499 (or 500); the
// engine going away is a 503 with Retry-After, in the seed's error shape.
func TestSeedWrapperShutdownMidRequestIs503(t *testing.T) {
	dir := t.TempDir()
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	o := Options{
		GRPC:     grpcserver.Flags{Addr: "127.0.0.1:0", AddrFile: filepath.Join(dir, "grpc.addr")},
		HTTPAddr: "127.0.0.1:0", HTTPAddrFile: filepath.Join(dir, "http.addr"),
		DataDir: filepath.Join(dir, "data"), DemoEngines: true, DemoDir: bins.Dir, TempDir: tmp,
		StallTimeout: 10 * time.Second, Env: []string{"SDSTANDIN_BACKTRACE=none", "SDSTANDIN_STEP_MS=20"},
	}
	ctx, shutdown := context.WithCancel(context.Background())
	defer shutdown()
	errc := make(chan error, 1)
	go func() { errc <- Run(ctx, o) }()
	grpcAddr := waitFile(t, o.GRPC.AddrFile, errc)
	httpURL := "http://" + waitFile(t, o.HTTPAddrFile, errc)
	cc, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	s := &service{client: diffusionv1.NewDiffusionServiceClient(cc), httpURL: httpURL}
	s.start(t, diffusionv1.EngineMode_ENGINE_MODE_CLI)

	type answer struct {
		status     int
		retryAfter string
		body       map[string]any
		err        error
	}
	done := make(chan answer, 1)
	go func() {
		resp, err := http.Post(httpURL+"/v1/images/generations", "application/json", strings.NewReader(`{"prompt":"x","width":64,"height":64,"steps":150}`))
		if err != nil {
			done <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		a := answer{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
		a.err = json.NewDecoder(resp.Body).Decode(&a.body)
		done <- a
	}()
	deadline := time.Now().Add(20 * time.Second)
	for getHealth(t, s)["busy"] != true {
		if time.Now().After(deadline) {
			t.Fatal("never busy")
		}
		time.Sleep(5 * time.Millisecond)
	}
	shutdown()
	a := <-done
	if a.err != nil {
		t.Fatalf("answer: %v", a.err)
	}
	msg, _ := a.body["error"].(string)
	if a.status != 503 || a.retryAfter == "" || len(a.body) != 1 || !strings.Contains(msg, "stopped") {
		t.Errorf("shutdown mid-request: %d Retry-After %q %v", a.status, a.retryAfter, a.body)
	}
	if err := <-errc; err != nil {
		t.Errorf("Run: %v", err)
	}
}

// Issue 13: "steps": 0, "width": 0 and "height": 0 took the defaults like a field left
// out. Sent as 0 they are refused (400, the seed's error with the reason) before the
// engine is asked anything, even while it is stopped; left out, they take 512x512.
func TestSeedWrapperExplicitZeroIs400(t *testing.T) {
	s := startService(t, nil)
	url := s.httpURL + "/v1/images/generations"
	for field, want := range map[string]string{"width": "width must", "height": "height must", "steps": "steps must"} {
		body := fmt.Sprintf(`{"prompt":"x","width":64,"height":64,"steps":1,%q:0}`, field)
		st, out := postJSON(t, url, body)
		if msg, _ := out["error"].(string); st != 400 || !strings.Contains(msg, want) || !strings.Contains(msg, "got 0") || len(out) != 1 {
			t.Errorf("%s: %d %v", body, st, out)
		}
	}
	// Left out, the same request passes validation and reaches the (stopped) engine.
	if st, out := postJSON(t, url, `{"prompt":"x","steps":1}`); st != 503 || !strings.Contains(fmt.Sprint(out["error"]), "not running") {
		t.Errorf("omitted size, engine stopped: %d %v", st, out)
	}
	s.start(t, diffusionv1.EngineMode_ENGINE_MODE_CLI)
	st, out := postJSON(t, url, `{"prompt":"x","steps":1}`)
	if st != 200 || out["width"] != float64(512) || out["height"] != float64(512) {
		t.Errorf("omitted size: %d width %v height %v", st, out["width"], out["height"])
	}
}

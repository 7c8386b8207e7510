package auth_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/genailab/genailab/pkg/auth"
)

func TestMiddleware(t *testing.T) {
	var logs bytes.Buffer
	g := auth.NewGuard("s3cret-token", slog.New(slog.NewTextHandler(&logs, nil)))
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	srv := httptest.NewServer(g.Middleware(ok, "/health"))
	defer srv.Close()
	cases := []struct {
		path, header string
		want         int
	}{
		{"/v1/llm", "", 401},
		{"/v1/llm", "Bearer wrong", 401},
		{"/v1/llm", "Basic s3cret-token", 401},
		{"/v1/llm", "Bearer s3cret-token", 204},
		{"/v1/llm", "bearer s3cret-token", 204},
		{"/health", "", 204},
	}
	for _, c := range cases {
		req, _ := http.NewRequest("GET", srv.URL+c.path, nil)
		if c.header != "" {
			req.Header.Set("Authorization", c.header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s %q: %d, want %d", c.path, c.header, resp.StatusCode, c.want)
		}
	}
	if strings.Contains(logs.String(), "s3cret-token") || strings.Contains(logs.String(), "wrong") && !strings.Contains(logs.String(), "refused") {
		t.Fatalf("logs must not carry the secret: %s", logs.String())
	}
	if !strings.Contains(logs.String(), "refused unauthenticated request") {
		t.Fatalf("refusals must be logged: %s", logs.String())
	}
}

func TestDisabledGuardPassesEverything(t *testing.T) {
	g := auth.NewGuard("", nil)
	if g.Enabled() || !g.Check("") {
		t.Fatal("an empty token disables the check")
	}
}

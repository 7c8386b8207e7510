package llamaclient

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// WithAPIKey sends llama-server's API key as a bearer token on every request, and
// the client it was made from sends none.
func TestWithAPIKeySendsTheKey(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.URL.Path+" "+r.Header.Get("Authorization"))
		mu.Unlock()
		if r.URL.Path == "/health" {
			w.Write([]byte(`{"status":"ok"}`))
			return
		}
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"error":{"code":401,"message":"Invalid API Key","type":"authentication_error"}}`))
	}))
	defer srv.Close()
	plain, err := New(srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	keyed := plain.WithAPIKey("k3y")
	ctx := context.Background()
	if _, err := keyed.Health(ctx); err != nil {
		t.Fatal(err)
	}
	req := ChatRequest{Messages: []Message{{Role: "user", Content: "hi"}}, MaxTokens: 1}
	if _, err := keyed.ChatStream(ctx, req); err == nil {
		t.Fatal("401 accepted")
	}
	if _, err := plain.Health(ctx); err != nil {
		t.Fatal(err)
	}
	want := []string{"/health Bearer k3y", "/v1/chat/completions Bearer k3y", "/health "}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != len(want) {
		t.Fatalf("requests %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("requests %q, want %q", got, want)
		}
	}
}

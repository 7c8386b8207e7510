package httpserver_test

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/genailab/genailab/pkg/httpserver"
)

func TestStartServeStop(t *testing.T) {
	addrFile := filepath.Join(t.TempDir(), "http.addr")
	s, err := httpserver.Start(httpserver.Options{Name: "test", Addr: "127.0.0.1:0", AddrFile: addrFile,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hi") })})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(addrFile); err != nil || string(b) != s.Addr() {
		t.Fatalf("address file %q %v, want %q", b, err, s.Addr())
	}
	resp, err := http.Get("http://" + s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "hi" {
		t.Fatalf("body %q", b)
	}
	s.Stop()
	if _, err := os.Stat(addrFile); !os.IsNotExist(err) {
		t.Fatalf("address file left after Stop: %v", err)
	}
	if _, err := http.Get("http://" + s.Addr()); err == nil {
		t.Fatal("still serving after Stop")
	}
}

func TestBusyAddress(t *testing.T) {
	s, err := httpserver.Start(httpserver.Options{Name: "first", Addr: "127.0.0.1:0", Handler: http.NotFoundHandler()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	if _, err := httpserver.Start(httpserver.Options{Name: "second", Addr: s.Addr(), Handler: http.NotFoundHandler()}); err == nil {
		t.Fatal("a busy address must fail")
	}
}

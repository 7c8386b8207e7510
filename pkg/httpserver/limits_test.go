package httpserver

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// Regression: slow-body and idle connections were never closed (only header slowloris was cut
// at 10 s). 400 connections that send a body one byte at a time are cut after the body timeout,
// a normal client stays fast meanwhile, and a long streamed response is not cut by the deadline.
func TestSlowBodyConnectionsAreCutAndNormalClientsStayFast(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return // the deadline hit: the connection is closed by the server
		}
		fmt.Fprint(w, len(b))
	})
	mux.HandleFunc("POST /stream", func(w http.ResponseWriter, r *http.Request) {
		// Reads only what it needs, like a JSON decoder: never the body's EOF.
		_, _ = r.Body.Read(make([]byte, 2))
		for i := 0; i < 6; i++ { // 6 × 100 ms: longer than the body timeout
			fmt.Fprintf(w, "line %d\n", i)
			w.(http.Flusher).Flush()
			time.Sleep(100 * time.Millisecond)
		}
	})
	s, err := Start(Options{Name: "test", Addr: "127.0.0.1:0", Handler: mux, BodyReadTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()

	const slow = 400
	var wg sync.WaitGroup
	cut := make(chan time.Duration, slow)
	for i := 0; i < slow; i++ {
		c, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := fmt.Fprintf(c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nx"); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func(c net.Conn) {
			defer wg.Done()
			t0 := time.Now()
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, _ = io.Copy(io.Discard, c) // returns when the server closes the connection
			cut <- time.Since(t0)
		}(c)
	}
	// A normal client, meanwhile.
	t0 := time.Now()
	resp, err := http.Post("http://"+s.Addr()+"/echo", "text/plain", strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "5" || time.Since(t0) > 2*time.Second {
		t.Fatalf("normal client: %q after %s", b, time.Since(t0))
	}
	wg.Wait()
	close(cut)
	for d := range cut {
		if d >= 10*time.Second {
			t.Fatalf("a slow-body connection stayed open %s", d)
		}
	}

	// The body deadline is lifted once the body is read: a 600 ms stream is not cut at 300 ms.
	resp, err = http.Post("http://"+s.Addr()+"/stream", "text/plain", strings.NewReader("go"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	n := 0
	for sc := bufio.NewScanner(resp.Body); sc.Scan(); {
		n++
	}
	if n != 6 {
		t.Fatalf("streamed %d lines, want 6 (cut by the body deadline?)", n)
	}
}

func TestConnectionCapAndShutdownWhileFull(t *testing.T) {
	block := make(chan struct{})
	s, err := Start(Options{Name: "test", Addr: "127.0.0.1:0", MaxConns: 2, ShutdownGrace: 200 * time.Millisecond,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block })})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	for i := 0; i < 3; i++ {
		go func() {
			req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+s.Addr()+"/", nil)
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				resp.Body.Close()
			}
		}()
	}
	<-ctx.Done()
	close(block)
	stopped := make(chan struct{})
	go func() { s.Stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("Stop hung with the connection cap reached")
	}
}

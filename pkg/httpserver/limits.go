package httpserver

import (
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// bodyDeadline bounds the time to read each request's body with a read deadline set through
// http.ResponseController, and lifts it once the body has been read (or closed), so that a
// long streamed response (chat, progress) is never cut by it. A slow-body client (slowloris on
// the body) gets a read error and its connection is closed.
func bodyDeadline(next http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
			next.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		if err := rc.SetReadDeadline(time.Now().Add(d)); err != nil {
			next.ServeHTTP(w, r) // a connection that has no deadlines (HTTP/2 handled elsewhere)
			return
		}
		var once sync.Once
		lift := func() { once.Do(func() { _ = rc.SetReadDeadline(time.Time{}) }) }
		r.Body = &liftingBody{ReadCloser: r.Body, lift: lift}
		// A handler that answers has read what it needs (a JSON decoder may stop before EOF).
		next.ServeHTTP(&liftingWriter{ResponseWriter: w, rc: rc, lift: lift}, r)
	})
}

// liftingWriter lifts the body deadline when the response starts; it keeps Flush (grpc-gateway
// asserts http.Flusher) and Unwrap (http.ResponseController).
type liftingWriter struct {
	http.ResponseWriter
	rc   *http.ResponseController
	lift func()
}

func (w *liftingWriter) WriteHeader(code int) { w.lift(); w.ResponseWriter.WriteHeader(code) }

func (w *liftingWriter) Write(p []byte) (int, error) { w.lift(); return w.ResponseWriter.Write(p) }

func (w *liftingWriter) Flush() { w.lift(); _ = w.rc.Flush() }

func (w *liftingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// liftingBody calls lift when the body is exhausted or closed.
type liftingBody struct {
	io.ReadCloser
	lift func()
}

func (b *liftingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.lift()
	}
	return n, err
}

func (b *liftingBody) Close() error {
	b.lift()
	return b.ReadCloser.Close()
}

// limitListener accepts at most n connections at a time: beyond that, Accept waits for one to
// close (the kernel's backlog holds the rest), so no flood of connections can exhaust the
// process.
func limitListener(l net.Listener, n int) net.Listener {
	return &limited{Listener: l, sem: make(chan struct{}, n), closed: make(chan struct{})}
}

type limited struct {
	net.Listener
	sem       chan struct{}
	closed    chan struct{}
	closeOnce sync.Once
}

func (l *limited) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.closed:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitedConn{Conn: c, release: func() { <-l.sem }}, nil
}

type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

func (l *limited) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

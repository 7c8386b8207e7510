package grpcserver_test

import (
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/genailab/genailab/pkg/grpcserver"
)

// pinger is a bare HTTP/2 client connection that sends pings and reports whether the
// server answered one with GOAWAY "too_many_pings" (grpc-go clients cannot ping more
// often than every 10 s, too slow for a test).
type pinger struct {
	t      *testing.T
	conn   net.Conn
	fr     *http2.Framer
	wmu    sync.Mutex // the framer's writes
	acks   chan struct{}
	goaway chan string
}

func newPinger(t *testing.T, addr string) *pinger {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := conn.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	p := &pinger{t: t, conn: conn, fr: http2.NewFramer(conn, conn), acks: make(chan struct{}, 16), goaway: make(chan string, 1)}
	if err := p.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			f, err := p.fr.ReadFrame()
			if err != nil {
				return
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
					p.wmu.Lock()
					_ = p.fr.WriteSettingsAck()
					p.wmu.Unlock()
				}
			case *http2.PingFrame:
				if f.IsAck() {
					p.acks <- struct{}{}
				}
			case *http2.GoAwayFrame:
				p.goaway <- string(f.DebugData())
				return
			}
		}
	}()
	return p
}

// ping sends n pings every gap, each after the previous one's ack, and returns the
// GOAWAY debug data if the server sent one ("" otherwise).
func (p *pinger) ping(n int, gap time.Duration) string {
	p.t.Helper()
	for i := range n {
		if i > 0 {
			time.Sleep(gap)
		}
		p.wmu.Lock()
		err := p.fr.WritePing(false, [8]byte{byte(i)})
		p.wmu.Unlock()
		if err != nil {
			p.t.Fatal(err)
		}
		select {
		case <-p.acks:
		case msg := <-p.goaway:
			return msg
		case <-time.After(5 * time.Second):
			p.t.Fatal("no ping ack")
		}
	}
	select {
	case msg := <-p.goaway:
		return msg
	case <-time.After(100 * time.Millisecond):
		return ""
	}
}

// Keepalive pings on an idle connection, no more often than KeepaliveMinTime, are
// accepted (grpc's default policy refuses any ping without a stream within 2 h); pings
// more often than that still earn a GOAWAY. Both listeners apply the policy.
func TestKeepalivePolicy(t *testing.T) {
	s := start(t, grpcserver.Options{Addr: "127.0.0.1:0", HealthAddr: "127.0.0.1:0", KeepaliveMinTime: 50 * time.Millisecond})
	for _, addr := range []string{s.Addr(), s.HealthAddr()} {
		if msg := newPinger(t, addr).ping(5, 80*time.Millisecond); msg != "" {
			t.Errorf("%s: pings every 80 ms without a stream (min 50 ms) got GOAWAY %q", addr, msg)
		}
		if msg := newPinger(t, addr).ping(8, 0); msg != "too_many_pings" {
			t.Errorf("%s: back-to-back pings got GOAWAY %q, want too_many_pings", addr, msg)
		}
	}
}

package e2e

import (
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"
)

// BenchmarkHealthVsTrivialServer compares GET /health through the gateway (gateway →
// orchestrator, which answers from its relay's streams) with a trivial Go net/http server
// returning the same JSON, 50 keep-alive connections each, in alternated rounds of 2000
// requests. It reports both rates, their ratio, and the ratio of the p99 latencies.
func BenchmarkHealthVsTrivialServer(b *testing.B) {
	s := newStack(b, stackOptions{Gateway: true, StandIn: true, StepMS: 1})
	gw := s.gateway + "/health"
	// The trivial server answers the gateway's own bytes: protojson's spacing varies from
	// build to build, and the two bodies must be the same.
	resp, err := http.Get(gw)
	if err != nil {
		b.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("GET %s: %d %s (%v)", gw, resp.StatusCode, body, err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})}
	go srv.Serve(lis)
	defer srv.Close()
	trivial := "http://" + lis.Addr().String() + "/health"
	const conns, perRound = 50, 2000
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}}
	round := func(url string) (time.Duration, []time.Duration) {
		lat := make([]time.Duration, perRound)
		var next sync.Mutex
		i := 0
		var wg sync.WaitGroup
		t0 := time.Now()
		for range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					next.Lock()
					k := i
					i++
					next.Unlock()
					if k >= perRound {
						return
					}
					t := time.Now()
					resp, err := client.Get(url)
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Errorf("%s: %d", url, resp.StatusCode)
					}
					lat[k] = time.Since(t)
				}
			}()
		}
		wg.Wait()
		return time.Since(t0), lat
	}
	round(trivial) // warm both
	round(gw)
	var tTriv, tGW time.Duration
	var lTriv, lGW []time.Duration
	b.ResetTimer()
	for range b.N {
		d, l := round(trivial)
		tTriv += d
		lTriv = append(lTriv, l...)
		d, l = round(gw)
		tGW += d
		lGW = append(lGW, l...)
	}
	b.StopTimer()
	p99 := func(l []time.Duration) time.Duration { slices.Sort(l); return l[len(l)*99/100] }
	rTriv := float64(b.N*perRound) / tTriv.Seconds()
	rGW := float64(b.N*perRound) / tGW.Seconds()
	b.ReportMetric(rTriv, "trivial-req/s")
	b.ReportMetric(rGW, "gateway-req/s")
	b.ReportMetric(rGW/rTriv, "rate-ratio")
	b.ReportMetric(float64(p99(lTriv).Microseconds())/1000, "trivial-p99-ms")
	b.ReportMetric(float64(p99(lGW).Microseconds())/1000, "gateway-p99-ms")
	b.ReportMetric(float64(p99(lGW))/float64(p99(lTriv)), "p99-ratio")
}

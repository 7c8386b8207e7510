package httpserver_test

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/genailab/genailab/pkg/httpserver"
	"github.com/genailab/genailab/pkg/tlsconfig/pki"
)

func TestServeTLS(t *testing.T) {
	ca, err := pki.NewCA("test CA", 0)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(pki.Request{CommonName: "gw", IPs: []net.IP{net.ParseIP("127.0.0.1")}})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(leaf.CertPEM, leaf.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	s, err := httpserver.Start(httpserver.Options{Name: "test", Addr: "127.0.0.1:0",
		TLS:     &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "secure") })})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}}
	resp, err := client.Get("https://" + s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "secure" || resp.TLS == nil || resp.ProtoMajor != 2 {
		t.Fatalf("body %q, TLS %v, proto %s", b, resp.TLS != nil, resp.Proto)
	}
	// Plain HTTP on the TLS port gets crypto/tls's 400, never the handler.
	if resp, err := http.Get("http://" + s.Addr()); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || string(b) == "secure" {
			t.Fatalf("plain HTTP: %d %q", resp.StatusCode, b)
		}
	}
}

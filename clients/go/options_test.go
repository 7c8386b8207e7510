package genailab_test

import (
	"errors"
	"testing"

	genailab "github.com/genailab/genailab/clients/go"
)

func TestAddresses(t *testing.T) {
	cases := []struct {
		o    genailab.Options
		want map[genailab.Service]string
	}{
		{genailab.Options{}, map[genailab.Service]string{"orchestrator": "127.0.0.1:50054", "llm": "127.0.0.1:50051", "diffusion": "127.0.0.1:50052", "monitor": "127.0.0.1:50053"}},
		{genailab.Options{Addr: "gpu1.lan"}, map[genailab.Service]string{"orchestrator": "gpu1.lan:50054", "llm": "gpu1.lan:50051", "diffusion": "gpu1.lan:50052", "monitor": "gpu1.lan:50053"}},
		{genailab.Options{Addr: "10.0.0.2:9000", MonitorAddr: "10.0.0.3"}, map[genailab.Service]string{"orchestrator": "10.0.0.2:9000", "llm": "10.0.0.2:50051", "diffusion": "10.0.0.2:50052", "monitor": "10.0.0.3:50053"}},
		{genailab.Options{Addr: "::1", LLMAddr: ":7000"}, map[genailab.Service]string{"orchestrator": "[::1]:50054", "llm": "[::1]:7000", "diffusion": "[::1]:50052", "monitor": "[::1]:50053"}},
		{genailab.Options{Addr: "[::1]:1234"}, map[genailab.Service]string{"orchestrator": "[::1]:1234", "llm": "[::1]:50051", "diffusion": "[::1]:50052", "monitor": "[::1]:50053"}},
	}
	for _, c := range cases {
		got, err := c.o.Addresses()
		if err != nil {
			t.Errorf("%+v: %v", c.o, err)
			continue
		}
		for svc, want := range c.want {
			if got[svc] != want {
				t.Errorf("%+v: %s = %q, want %q", c.o, svc, got[svc], want)
			}
		}
	}
	for _, bad := range []genailab.Options{{Addr: "host:0"}, {Addr: "host:99999"}, {Addr: "host:http"}, {Addr: "a b"}, {LLMAddr: "x/y:1"}, {DiffusionAddr: "h:1:2"}} {
		if _, err := bad.Addresses(); !errors.Is(err, genailab.ErrBadAddress) {
			t.Errorf("%+v: %v, want ErrBadAddress", bad, err)
		}
		if _, err := genailab.Dial(bad); !errors.Is(err, genailab.ErrBadAddress) {
			t.Errorf("Dial %+v: %v, want ErrBadAddress", bad, err)
		}
	}
}

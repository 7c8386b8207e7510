package stack_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"

	"github.com/genailab/genailab/pkg/testenv"
)

// floorRelayEnv makes the test binary run the floor relay (the value is the
// llama-server chat URL it forwards to) instead of its tests.
const floorRelayEnv = "GENAILAB_BENCH_FLOOR_RELAY"

// The floor relay is the least a relay in its own process can do: one gRPC
// method taking a llama-server request body as raw bytes, posted as it is to
// llama-server over a keep-alive net/http client, and the answer sent back
// (whole: the body in one message; streamed: each read of the body as one
// message). No parsing, no validation, no logging, no metrics, no
// interceptors. BenchmarkChatRelay runs it as a separate process beside the
// stack: what the LLM service adds beyond it is its own work; what the floor
// adds over direct is the hop itself on this machine.
const (
	floorWholeMethod  = "/genailab.bench.Floor/Whole"
	floorStreamMethod = "/genailab.bench.Floor/Stream"
)

func TestMain(m *testing.M) {
	if url := os.Getenv(floorRelayEnv); url != "" {
		if err := runFloorRelay(url); err != nil {
			fmt.Fprintln(os.Stderr, "floor relay:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// rawCodec passes *[]byte messages through unchanged.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	b, ok := v.(*[]byte)
	if !ok {
		return nil, fmt.Errorf("raw codec: %T is not *[]byte", v)
	}
	return *b, nil
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	b, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("raw codec: %T is not *[]byte", v)
	}
	*b = append((*b)[:0], data...)
	return nil
}

func (rawCodec) Name() string { return "proto" } // what the client asks for by default

var _ encoding.Codec = rawCodec{}

// runFloorRelay serves until stdin closes, printing its address first.
func runFloorRelay(url string) error {
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4, IdleConnTimeout: 4 * time.Second}}
	post := func(ctx context.Context, body []byte) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		if bytes.Contains(body, []byte(`"stream":true`)) {
			req.Close = true // llama-server closes a streamed reply's connection anyway
		}
		return hc.Do(req)
	}
	handler := func(_ any, stream grpc.ServerStream) error {
		method, _ := grpc.MethodFromServerStream(stream)
		var in []byte
		if err := stream.RecvMsg(&in); err != nil {
			return err
		}
		resp, err := post(stream.Context(), in)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if method == floorWholeMethod {
			out, err := io.ReadAll(resp.Body)
			if err != nil {
				return err
			}
			return stream.SendMsg(&out)
		}
		buf := make([]byte, 32<<10)
		for {
			n, err := resp.Body.Read(buf)
			if n > 0 {
				out := buf[:n]
				if err := stream.SendMsg(&out); err != nil {
					return err
				}
			}
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
		}
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := grpc.NewServer(grpc.ForceServerCodec(rawCodec{}), grpc.UnknownServiceHandler(handler))
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); srv.Stop() }()
	fmt.Println(lis.Addr().String())
	return srv.Serve(lis)
}

// floorRelay is a running floor relay and a client of it.
type floorRelay struct{ cc *grpc.ClientConn }

// startFloorRelay starts the floor relay in front of the llama-server chat URL.
func startFloorRelay(b *testing.B, url string) *floorRelay {
	b.Helper()
	h := testenv.StartSelf(b, floorRelayEnv, url)
	line, err := bufio.NewReader(h.Out).ReadString('\n')
	if err != nil {
		b.Fatalf("floor relay: no address: %v", err)
	}
	cc, err := grpc.NewClient(strings.TrimSpace(line), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cc.Close() })
	return &floorRelay{cc: cc}
}

// chat runs one request through the floor relay; first is the first
// message holding a non-empty "content" (streamed).
func (f *floorRelay) chat(ctx context.Context, body string, stream bool) (chatRun, error) {
	in := []byte(body)
	t0 := time.Now()
	if !stream {
		var out []byte
		if err := f.cc.Invoke(ctx, floorWholeMethod, &in, &out, grpc.ForceCodec(rawCodec{})); err != nil {
			return chatRun{}, err
		}
		if !bytes.Contains(out, []byte(`"choices"`)) {
			return chatRun{}, fmt.Errorf("floor relay: not a completion: %.200s", out)
		}
		return chatRun{total: time.Since(t0)}, nil
	}
	desc := &grpc.StreamDesc{ServerStreams: true}
	st, err := f.cc.NewStream(ctx, desc, floorStreamMethod, grpc.ForceCodec(rawCodec{}))
	if err != nil {
		return chatRun{}, err
	}
	if err := st.SendMsg(&in); err != nil {
		return chatRun{}, err
	}
	if err := st.CloseSend(); err != nil {
		return chatRun{}, err
	}
	var r chatRun
	for {
		var out []byte
		err := st.RecvMsg(&out)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return chatRun{}, err
		}
		if r.first == 0 && bytes.Contains(out, []byte(`"content":"`)) && !bytes.Contains(out, []byte(`"content":""`)) {
			r.first = time.Since(t0)
		}
	}
	r.total = time.Since(t0)
	return r, nil
}

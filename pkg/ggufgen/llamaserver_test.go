package ggufgen_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/genailab/genailab/pkg/ggufgen"
	"github.com/genailab/genailab/pkg/llamabin/llamabintest"
)

// TestRealLlamaServerServesGeneratedModel is the proof that the generated file is a real model: the real
// llama-server loads it, reports healthy, and answers chat completions, streamed and not.
func TestRealLlamaServerServesGeneratedModel(t *testing.T) {
	model := filepath.Join(t.TempDir(), "tiny.gguf")
	if err := ggufgen.WriteFile(model, ggufgen.DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	srv := llamabintest.Start(t, model)
	bin := srv.Cmd.Path

	resp, err := http.Get(srv.URL + "/health")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte(`"ok"`)) {
		t.Fatalf("/health = %d %s", resp.StatusCode, body)
	}

	t.Run("non-stream", func(t *testing.T) {
		var out struct {
			Choices []struct {
				Message      struct{ Content string }
				FinishReason string `json:"finish_reason"`
			}
			Usage struct {
				CompletionTokens int `json:"completion_tokens"`
			}
		}
		raw := postChat(t, srv.URL, false)
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("decode %s: %v", raw, err)
		}
		if len(out.Choices) != 1 || out.Choices[0].Message.Content == "" || out.Usage.CompletionTokens == 0 {
			t.Fatalf("empty completion: %s", raw)
		}
	})

	t.Run("stream", func(t *testing.T) {
		raw := postChat(t, srv.URL, true)
		var content strings.Builder
		done := false
		sc := bufio.NewScanner(bytes.NewReader(raw))
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			if data == "[DONE]" {
				done = true
				continue
			}
			var chunk struct {
				Choices []struct{ Delta struct{ Content string } }
			}
			if err := json.Unmarshal([]byte(data), &chunk); err != nil {
				t.Fatalf("chunk %q: %v", data, err)
			}
			for _, c := range chunk.Choices {
				content.WriteString(c.Delta.Content)
			}
		}
		if !done || content.Len() == 0 {
			t.Fatalf("stream done=%v content=%q; raw:\n%s", done, content.String(), raw)
		}
	})

	t.Run("no host libraries", func(t *testing.T) {
		real, err := filepath.EvalSymlinks(bin)
		if err != nil {
			t.Fatal(err)
		}
		root, ok := installRoot(real)
		if !ok {
			t.Skipf("%s is not the project's install; library origins are its own business", real)
		}
		maps, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", srv.Cmd.Process.Pid))
		if err != nil {
			t.Fatal(err)
		}
		libs := 0
		for _, line := range strings.Split(string(maps), "\n") {
			f := strings.Fields(line)
			if len(f) < 6 || !strings.HasPrefix(f[5], "/") || !strings.Contains(f[5], ".so") {
				continue
			}
			libs++
			if !strings.HasPrefix(f[5], root+"/") {
				t.Errorf("llama-server mapped a library from outside %s: %s", root, f[5])
			}
		}
		if libs < 10 {
			t.Fatalf("only %d libraries mapped: %s", libs, maps)
		}
	})
}

// installRoot returns <dir>/root for a binary at <dir>/root/usr/bin/llama-server.
func installRoot(realBin string) (string, bool) {
	usrBin := filepath.Dir(realBin)
	root := filepath.Dir(filepath.Dir(usrBin))
	if filepath.Base(usrBin) != "bin" || filepath.Base(filepath.Dir(usrBin)) != "usr" || filepath.Base(root) != "root" {
		return "", false
	}
	if _, err := os.Stat(filepath.Join(root, "..", ".complete")); err != nil {
		return "", false
	}
	return root, true
}

func postChat(t *testing.T, url string, stream bool) []byte {
	t.Helper()
	req := fmt.Sprintf(`{"messages":[{"role":"user","content":"Say hello"}],"max_tokens":24,"stream":%v,"seed":1}`, stream)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hr, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/chat/completions", strings.NewReader(req))
	hr.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("chat status %d: %s", resp.StatusCode, raw)
	}
	return raw
}

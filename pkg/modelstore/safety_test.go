package modelstore

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateID(t *testing.T) {
	good := []string{"a", "llama-3.2-1b", "qwen2.5_0.5b", "x.y-z_1", "0abc"}
	bad := []string{"", ".", "..", "../x", "a/b", `a\b`, "/abs", "A", "Upper", "a..b", "-lead", ".hidden", "_x", "a b", "é", "a\x00b", strings.Repeat("a", 129), "%2e%2e"}
	for _, id := range good {
		if err := ValidateID(id); err != nil {
			t.Errorf("ValidateID(%q) = %v", id, err)
		}
	}
	for _, id := range bad {
		if err := ValidateID(id); !errors.Is(err, ErrInvalidID) {
			t.Errorf("ValidateID(%q) = %v, want ErrInvalidID", id, err)
		}
	}
}

func TestDeriveID(t *testing.T) {
	cases := map[string]string{
		"Llama-3.2-1B-Instruct-Q4_K_M.gguf":    "llama-3.2-1b-instruct-q4_k_m",
		"big-model-00001-of-00003.gguf":        "big-model",
		"My Cool Model!!":                      "my-cool-model",
		"../../etc/passwd":                     "passwd",
		`C:\models\x.safetensors`:              "x",
		"..hidden..name..":                     "hidden.name",
		"flux1-schnell-q4_k.gguf":              "flux1-schnell-q4_k",
		"sd_xl_turbo_1.0_fp16.safetensors":     "sd_xl_turbo_1.0_fp16",
		"stable-diffusion-v1-5-Q5_1.gguf.gguf": "stable-diffusion-v1-5-q5_1.gguf",
	}
	for in, want := range cases {
		got, err := DeriveID(in)
		if err != nil || got != want {
			t.Errorf("DeriveID(%q) = %q, %v; want %q", in, got, err, want)
		}
		if err == nil {
			if verr := ValidateID(got); verr != nil {
				t.Errorf("derived id %q invalid: %v", got, verr)
			}
		}
	}
	for _, in := range []string{"", "...", "!!!", "/"} {
		if _, err := DeriveID(in); !errors.Is(err, ErrInvalidID) {
			t.Errorf("DeriveID(%q) = %v, want ErrInvalidID", in, err)
		}
	}
}

func TestSafeFileName(t *testing.T) {
	for _, n := range []string{"model.gguf", "ae-f16.gguf", "a b.safetensors", "x-00001-of-00002.gguf"} {
		if _, err := SafeFileName(n); err != nil {
			t.Errorf("SafeFileName(%q) = %v", n, err)
		}
	}
	for _, n := range []string{"", ".", "..", "../x", "a/b", `a\b`, `..\x`, "/etc/passwd", ".hidden", "model.json",
		"x.gguf.partial", "x.gguf.partial.json", "a\nb", "c:evil", strings.Repeat("a", 256)} {
		if _, err := SafeFileName(n); !errors.Is(err, ErrUnsafeFileName) {
			t.Errorf("SafeFileName(%q) = %v, want ErrUnsafeFileName", n, err)
		}
	}
}

func TestHFResolveURL(t *testing.T) {
	got, err := HFResolveURL("https://hf.example/", HFFile{Repo: "org/Model-1.5", File: "sub dir/a+b#?.gguf", Revision: "refs/pr/1"})
	want := "https://hf.example/org/Model-1.5/resolve/refs%2Fpr%2F1/sub%20dir/a+b%23%3F.gguf"
	if err != nil || got != want {
		t.Fatalf("got %q, %v\nwant %q", got, err, want)
	}
	got, err = HFResolveURL(DefaultHFBaseURL, HFFile{Repo: "bartowski/Llama-3.2-1B-Instruct-GGUF", File: "Llama-3.2-1B-Instruct-Q4_K_M.gguf"})
	if err != nil || got != "https://huggingface.co/bartowski/Llama-3.2-1B-Instruct-GGUF/resolve/main/Llama-3.2-1B-Instruct-Q4_K_M.gguf" {
		t.Fatalf("got %q, %v", got, err)
	}
	for _, f := range []HFFile{
		{Repo: "../x", File: "a.gguf"}, {Repo: "org", File: "a.gguf"}, {Repo: "org/a/b", File: "a.gguf"},
		{Repo: "org/..", File: "a.gguf"}, {Repo: "org/m", File: "../a.gguf"}, {Repo: "org/m", File: "a/../../b.gguf"},
		{Repo: "org/m", File: `..\a.gguf`}, {Repo: "org/m", File: ""}, {Repo: "org/m", File: "a//b.gguf"},
		{Repo: "org/m", File: "a.gguf", Revision: ".."}, {Repo: "org/m", File: "a.gguf", Revision: "refs/../x"},
	} {
		if u, err := HFResolveURL(DefaultHFBaseURL, f); err == nil {
			t.Errorf("HFResolveURL(%+v) = %q, want an error", f, u)
		}
	}
	if _, err := HFResolveURL("file:///etc", HFFile{Repo: "o/m", File: "a.gguf"}); !errors.Is(err, ErrInvalidURL) {
		t.Errorf("file base: %v", err)
	}
}

func TestNormalizeSHA256(t *testing.T) {
	h := strings.Repeat("ab", 32)
	for _, in := range []string{h, "sha256:" + h, "SHA256:" + strings.ToUpper(h), "  " + h + " "} {
		if got, err := NormalizeSHA256(in); err != nil || got != h {
			t.Errorf("NormalizeSHA256(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"abc", "sha256:", "md5:" + h, strings.Repeat("zz", 32)} {
		if _, err := NormalizeSHA256(in); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("NormalizeSHA256(%q) = %v", in, err)
		}
	}
}

// Traversal attempts through the download API: nothing is fetched and
// nothing is written outside (or inside) the store.
func TestDownloadRefusesTraversal(t *testing.T) {
	fs := newFileServer(t)
	fs.add("/etc/passwd", []byte("root"))
	s := newTestStore(t, TypeLLM, func(o *Options) { o.HFBaseURL = fs.srv.URL })
	base := fs.srv.URL
	cases := []struct {
		name string
		req  Request
		want error
	}{
		{"id dotdot", Request{ID: "../evil", Parts: []Part{{URL: base + "/m/a.gguf"}}}, ErrInvalidID},
		{"id absolute", Request{ID: "/tmp/evil", Parts: []Part{{URL: base + "/m/a.gguf"}}}, ErrInvalidID},
		{"id backslash", Request{ID: `..\evil`, Parts: []Part{{URL: base + "/m/a.gguf"}}}, ErrInvalidID},
		{"id encoded", Request{ID: "%2e%2e", Parts: []Part{{URL: base + "/m/a.gguf"}}}, ErrInvalidID},
		{"url encoded dotdot", Request{Parts: []Part{{URL: base + "/m/%2e%2e"}}}, ErrUnsafeFileName},
		{"url encoded slash", Request{Parts: []Part{{URL: base + "/m/..%2f..%2fevil.gguf"}}}, ErrUnsafeFileName},
		{"url encoded backslash", Request{Parts: []Part{{URL: base + "/m/..%5c..%5cevil.gguf"}}}, ErrUnsafeFileName},
		{"url trailing slash", Request{Parts: []Part{{URL: base + "/m/"}}}, ErrUnsafeFileName},
		{"url dot file", Request{Parts: []Part{{URL: base + "/m/.bashrc.gguf"}}}, ErrUnsafeFileName},
		{"url record name", Request{Parts: []Part{{URL: base + "/m/model.json"}}}, ErrUnsafeFileName},
		{"file scheme", Request{Parts: []Part{{URL: "file:///etc/passwd"}}}, ErrInvalidURL},
		{"ftp scheme", Request{Parts: []Part{{URL: "ftp://h/a.gguf"}}}, ErrInvalidURL},
		{"relative url", Request{Parts: []Part{{URL: "/etc/passwd"}}}, ErrInvalidURL},
		{"user info", Request{Parts: []Part{{URL: "http://u:p@h/a.gguf"}}}, ErrInvalidURL},
		{"hf file dotdot", Request{Parts: []Part{{HF: &HFFile{Repo: "o/m", File: "../../etc/passwd"}}}}, ErrUnsafeFileName},
		{"hf file backslash", Request{Parts: []Part{{HF: &HFFile{Repo: "o/m", File: `..\..\x.gguf`}}}}, ErrUnsafeFileName},
		{"hf repo dotdot", Request{Parts: []Part{{HF: &HFFile{Repo: "../etc", File: "x.gguf"}}}}, ErrInvalidArgument},
		{"not gguf", Request{Parts: []Part{{URL: base + "/etc/passwd"}}}, ErrInvalidArgument},
		{"no source", Request{Parts: []Part{{}}}, ErrInvalidArgument},
		{"no parts", Request{ID: "x"}, ErrInvalidArgument},
		{"bad sha", Request{Parts: []Part{{URL: base + "/m/a.gguf", SHA256: "xyz"}}}, ErrInvalidArgument},
		{"diffusion component in llm", Request{Parts: []Part{{Component: ComponentVAE, URL: base + "/m/a.gguf"}}}, ErrInvalidArgument},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := s.Download(t.Context(), c.req, nil); !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
	if len(fs.requests) != 0 {
		t.Fatalf("the server was asked: %+v", fs.requests)
	}
	entries, _ := os.ReadDir(s.dataDir)
	if len(entries) != 1 || entries[0].Name() != "models" {
		t.Fatalf("data dir holds %v", entries)
	}
	if left := onlyFiles(t, s.dataDir); len(left) != 0 {
		t.Fatalf("files written: %v", left)
	}
	for _, id := range []string{"../x", "a/b", `a\b`, "..", "/abs"} {
		if _, err := s.Get(t.Context(), id); !errors.Is(err, ErrInvalidID) {
			t.Errorf("Get(%q) = %v", id, err)
		}
		if _, err := s.Delete(t.Context(), id, true); !errors.Is(err, ErrInvalidID) {
			t.Errorf("Delete(%q) = %v", id, err)
		}
		if _, err := s.Verify(t.Context(), id); !errors.Is(err, ErrInvalidID) {
			t.Errorf("Verify(%q) = %v", id, err)
		}
		if _, err := s.FilePath("ok", id); err == nil {
			t.Errorf("FilePath(ok, %q) accepted", id)
		}
	}
}

// A record whose file names were tampered with is refused, not followed.
func TestTamperedRecordRefused(t *testing.T) {
	s := newTestStore(t, TypeLLM, nil)
	dir := filepath.Join(s.Root(), "evil")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, recordName), []byte(`{"id":"evil","type":"llm","files":[{"name":"../../../etc/passwd"}]}`), 0o644)
	if _, err := s.Get(t.Context(), "evil"); !errors.Is(err, ErrCorruptRecord) {
		t.Fatalf("Get = %v", err)
	}
	if _, err := s.Verify(t.Context(), "evil"); !errors.Is(err, ErrCorruptRecord) {
		t.Fatalf("Verify = %v", err)
	}
	if l, err := s.List(t.Context()); err != nil || len(l) != 0 {
		t.Fatalf("List = %v %v", l, err)
	}
}

package llamabin

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func exe(t *testing.T, path string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("#!/bin/false\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestFindOrder(t *testing.T) {
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	engine := exe(t, filepath.Join(repo, EngineRelPath))
	deep := filepath.Join(repo, "services", "llm", "internal")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	configured := exe(t, filepath.Join(dir, "cfg", "llama-server"))
	fromEnv := exe(t, filepath.Join(dir, "env", "llama-server"))
	onPath := exe(t, filepath.Join(dir, "path", "llama-server"))
	env := map[string]string{}
	path := ""
	l := Lookup{
		Getenv: func(k string) string { return env[k] },
		LookPath: func(string) (string, error) {
			if path == "" {
				return "", errors.New("not on PATH")
			}
			return path, nil
		},
		From: deep,
	}
	check := func(want string, src Source) {
		t.Helper()
		f, err := l.Find()
		if err != nil || f.Path != want || f.Source != src {
			t.Fatalf("Find = %+v, %v; want %s from %s", f, err, want, src)
		}
	}
	check(engine, SourceEngines)
	path = onPath
	check(onPath, SourcePath)
	env[EnvVar] = fromEnv
	check(fromEnv, SourceEnv)
	l.Configured = configured
	check(configured, SourceConfig)

	// A configured or env path that is wrong is an error, never a fall-through.
	l.Configured = filepath.Join(dir, "nope")
	if _, err := l.Find(); err == nil {
		t.Fatal("missing configured path: want error")
	}
	l.Configured = ""
	notExec := filepath.Join(dir, "plain")
	if err := os.WriteFile(notExec, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	env[EnvVar] = notExec
	if _, err := l.Find(); err == nil {
		t.Fatal("non-executable env path: want error")
	}
	env[EnvVar] = dir
	if _, err := l.Find(); err == nil {
		t.Fatal("directory as env path: want error")
	}

	// Nothing anywhere.
	delete(env, EnvVar)
	path = ""
	l.From = dir
	if _, err := l.Find(); !errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
}

func TestEnvStripsLlamaSettings(t *testing.T) {
	in := []string{
		"PATH=/usr/bin", "LLAMA_ARG_PORT=9999", "HOME=/root", "LLAMA_ARG_MODEL=/x.gguf", "LLAMA_API_KEY=k",
		"LLAMA_ARG_LOG_PREFIX=0", "LD_LIBRARY_PATH=/opt/cuda", "LLAMA_ARGUMENT=kept", "HF_TOKEN=t",
		"LLAMA_SERVER_ROUTER_PORT=1",
	}
	orig := slices.Clone(in)
	got := Env(in)
	want := []string{"PATH=/usr/bin", "HOME=/root", "LD_LIBRARY_PATH=/opt/cuda", "LLAMA_ARGUMENT=kept"}
	if !slices.Equal(got, want) {
		t.Fatalf("Env = %q, want %q", got, want)
	}
	if !slices.Equal(in, orig) {
		t.Fatal("input modified")
	}
}

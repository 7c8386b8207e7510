package logring

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFileRotatesAndKeeps(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "engine.log")
	f, err := OpenFile(p, 10, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"aaaa\n", "bbbb\n", "cccc\n", "dddd\n", "eeee\n", "ffff\n", "gggg\n"} {
		if _, err := f.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := read("engine.log"); got != "gggg\n" {
		t.Errorf("current = %q", got)
	}
	if got := read("engine.log.1"); got != "eeee\nffff\n" {
		t.Errorf(".1 = %q", got)
	}
	if got := read("engine.log.2"); got != "cccc\ndddd\n" {
		t.Errorf(".2 = %q", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "engine.log.3")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("engine.log.3 should not exist: %v", err)
	}
	if _, err := f.Write([]byte("x")); !errors.Is(err, os.ErrClosed) {
		t.Errorf("write after close: %v", err)
	}
}

func TestFileAppendsToExistingAndHandlesHugeWrite(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "e.log")
	if err := os.WriteFile(p, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := OpenFile(p, 8, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write([]byte("new\n")); err != nil { // 4+4 == 8: fits
		t.Fatal(err)
	}
	big := strings.Repeat("z", 20) + "\n"
	if _, err := f.Write([]byte(big)); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(p)
	if string(got) != big {
		t.Errorf("after huge write = %q", got)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("keep=0 left %d files", len(entries))
	}
}

func TestOpenFileErrors(t *testing.T) {
	if _, err := OpenFile("", 0, 0); err == nil {
		t.Error("empty path accepted")
	}
	if _, err := OpenFile(filepath.Join(t.TempDir(), "missing", "x.log"), 0, 0); err == nil {
		t.Error("missing dir accepted")
	}
}

package main_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var (
	kittyEscape  = regexp.MustCompile(`\x1b_G([^;]*);([A-Za-z0-9+/=]*)\x1b\\`)
	iterm2Escape = regexp.MustCompile(`\x1b\]1337;File=inline=1;size=(\d+);[^:]*:([A-Za-z0-9+/=]*)\a`)
)

// kittyImages joins the chunks of each kitty image in out (a=T starts one).
func kittyImages(t *testing.T, out string) [][]byte {
	t.Helper()
	var imgs [][]byte
	var data string
	for _, m := range kittyEscape.FindAllStringSubmatch(out, -1) {
		if strings.HasPrefix(m[1], "a=T,") {
			data = ""
		}
		data += m[2]
		if strings.HasSuffix(m[1], "m=0") {
			b, err := base64.StdEncoding.DecodeString(data)
			if err != nil {
				t.Fatalf("kitty image data: %v", err)
			}
			imgs = append(imgs, b)
		}
	}
	return imgs
}

// Issue 18: generate shows the image (every image of a batch) in a terminal that shows
// images: kitty's protocol when TERM says kitty, on a real pseudo-terminal; iTerm2's when
// --show names it, even without a terminal; nothing on a terminal known to show none, or
// with --json. A bad --show fails before anything is generated.
func TestGenerateShowsTheImageInTheTerminal(t *testing.T) {
	startDiffusion(t)
	term, reader := openPTY(t, 100, 40)
	cmd := command(t, "generate", "a fox", "--width", "64", "--height", "64", "--steps", "2", "--seed", "3", "-n", "2", "-o", "fox.png")
	cmd.Env = append(cmd.Env, "TERM=xterm-kitty")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(""), term, term
	var buf syncBuffer
	done := make(chan struct{})
	go func() { io.Copy(&buf, bufio.NewReader(reader)); close(done) }()
	if err := cmd.Run(); err != nil {
		t.Fatalf("generate on a kitty terminal: %v\n%s", err, buf.String())
	}
	want := [][]byte{readFile(t, filepath.Join(cmd.Dir, "fox.png")), readFile(t, filepath.Join(cmd.Dir, "fox-1.png"))}
	waitFor(t, 10*time.Second, "both images on the terminal", func() bool { return len(kittyImages(t, buf.String())) == 2 })
	term.Close()
	<-done
	for i, img := range kittyImages(t, buf.String()) {
		if !bytes.Equal(img, want[i]) {
			t.Errorf("kitty image %d: %d bytes, not the %d of the file", i, len(img), len(want[i]))
		}
	}

	r := ok(t, "generate", "a fox", "--width", "64", "--height", "64", "--steps", "2", "--show", "iterm2", "-o", filepath.Join(t.TempDir(), "x.png"))
	if m := iterm2Escape.FindStringSubmatch(r.stdout); m == nil || !strings.Contains(r.stdout, "\a\n") {
		t.Fatalf("--show iterm2 wrote no inline image:\n%q", r.stdout)
	}
	for _, args := range [][]string{{"--json"}, {}} {
		r := ok(t, append([]string{"generate", "a fox", "--width", "64", "--height", "64", "--steps", "2", "-o", filepath.Join(t.TempDir(), "x.png")}, args...)...)
		if strings.Contains(r.stdout, "\x1b") {
			t.Errorf("generate %v (not a terminal) wrote escapes:\n%q", args, r.stdout)
		}
	}
	fails(t, 1, `--show "sixel": want auto, kitty, iterm2 or none`, "generate", "x", "--show", "sixel")
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

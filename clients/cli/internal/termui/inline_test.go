package termui

import (
	"bytes"
	"encoding/base64"
	"regexp"
	"strings"
	"testing"
)

// The kitty escapes split the base64 into chunks of at most 4096 bytes, every one but the
// last marked m=1, the keys on the first only; joined, the chunks are the PNG.
func TestInlineImageKittyChunks(t *testing.T) {
	png := bytes.Repeat([]byte("\x89PNG-0123456789"), 700) // 10.5 KB: 14 KB of base64, 4 chunks
	out := InlineImage(Kitty, png, 40)
	re := regexp.MustCompile(`\x1b_G([^;]*);([A-Za-z0-9+/=]*)\x1b\\`)
	m := re.FindAllStringSubmatch(out, -1)
	if len(m) != 4 || !strings.HasSuffix(out, "\x1b\\\n") || re.ReplaceAllString(out, "") != "\n" {
		t.Fatalf("%d escapes, text outside them %q", len(m), re.ReplaceAllString(out, ""))
	}
	var data string
	for i, c := range m {
		want := "m=1"
		if i == len(m)-1 {
			want = "m=0"
		}
		if i == 0 {
			want = "a=T,f=100,q=2,c=40," + want
		}
		if c[1] != want || len(c[2]) > 4096 {
			t.Fatalf("escape %d: keys %q (want %q), %d bytes", i, c[1], want, len(c[2]))
		}
		data += c[2]
	}
	if got, err := base64.StdEncoding.DecodeString(data); err != nil || !bytes.Equal(got, png) {
		t.Fatalf("the chunks are not the PNG: %v", err)
	}
	if one := re.FindAllStringSubmatch(InlineImage(Kitty, []byte("x"), 8), -1); len(one) != 1 || one[0][1] != "a=T,f=100,q=2,c=8,m=0" {
		t.Fatalf("a small image: %q", one)
	}
}

func TestInlineImageITerm2(t *testing.T) {
	png := []byte("\x89PNG-data")
	want := "\x1b]1337;File=inline=1;size=9;width=30;preserveAspectRatio=1:" + base64.StdEncoding.EncodeToString(png) + "\a\n"
	if got := InlineImage(ITerm2, png, 30); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if got := InlineImage(NoImages, png, 30); got != "" {
		t.Fatalf("no protocol: %q", got)
	}
}

func TestDetectImageProtocol(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		want ImageProtocol
	}{
		{map[string]string{"TERM": "xterm-kitty"}, Kitty},
		{map[string]string{"TERM": "xterm-256color", "KITTY_WINDOW_ID": "1"}, Kitty},
		{map[string]string{"TERM_PROGRAM": "ghostty"}, Kitty},
		{map[string]string{"TERM_PROGRAM": "iTerm.app"}, ITerm2},
		{map[string]string{"LC_TERMINAL": "iTerm2"}, ITerm2},
		{map[string]string{"TERM_PROGRAM": "WezTerm"}, ITerm2},
		{map[string]string{"TERM": "xterm-256color"}, NoImages},
		{map[string]string{"TERM": "xterm-kitty", "TMUX": "/tmp/tmux-0/default,1,0"}, NoImages},
		{map[string]string{"TERM": "screen-256color", "LC_TERMINAL": "iTerm2"}, NoImages},
		{map[string]string{}, NoImages},
	} {
		if got := DetectImageProtocol(func(k string) string { return c.env[k] }); got != c.want {
			t.Errorf("%v: %v, want %v", c.env, got, c.want)
		}
	}
	for _, s := range []string{"kitty", "iterm2", "none"} {
		if p, err := ParseImageProtocol(s); err != nil || p.String() != s {
			t.Errorf("%s: %v %v", s, p, err)
		}
	}
	if _, err := ParseImageProtocol("sixel"); err == nil {
		t.Error("sixel accepted")
	}
}

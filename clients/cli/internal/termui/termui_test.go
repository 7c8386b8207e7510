package termui

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestSanitize(t *testing.T) {
	cases := map[string]string{
		"hello, world":                "hello, world",
		"two\nlines\tand tab":         "two\nlines\tand tab",
		"esc \x1b[31mred\x1b[0m":      "esc ␛[31mred␛[0m",
		"cr\roverwrite":               "cr␍overwrite",
		"bell\x07 nul\x00 del\x7f":    "bell␇ nul␀ del␡",
		"fffd \ufffd kept":            "fffd \ufffd kept",
		"c1 \u009b31m csi":            "c1 \ufffd31m csi",
		"bidi \u202eevil\u202c":       "bidi \ufffdevil\ufffd",
		"bad utf8 \xff\xfe end":       "bad utf8 \ufffd\ufffd end",
		"日本語 émoji 🦊":                 "日本語 émoji 🦊",
		"osc \x1b]0;title\x07 done":   "osc ␛]0;title␇ done",
		"":                            "",
		"\x1b":                        "␛",
		"mixed \x1b\ufffd\u0085\x08x": "mixed ␛\ufffd\ufffd␈x",
	}
	for in, want := range cases {
		if got := Sanitize(in); got != want {
			t.Errorf("Sanitize(%q) = %q, want %q", in, got, want)
		}
	}
	if got := SanitizeLine("a\nb\tc\x1b"); got != "a b c␛" {
		t.Errorf("SanitizeLine = %q", got)
	}
}

// TestSanitizeNeverLetsAControlThrough feeds every byte value and some multi-byte
// sequences through Sanitize and checks that no control character survives.
func TestSanitizeNeverLetsAControlThrough(t *testing.T) {
	var all []byte
	for i := 0; i < 256; i++ {
		all = append(all, byte(i))
	}
	out := Sanitize(string(all) + "\u0080\u009f\u2066\u2069\u200f")
	for _, r := range out {
		if (r < 0x20 && r != '\n' && r != '\t') || r == 0x7f || (r >= 0x80 && r <= 0x9f) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) || r == 0x200f {
			t.Fatalf("control %U survived in %q", r, out)
		}
	}
}

func TestHuman(t *testing.T) {
	for n, want := range map[uint64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 24194142208: "22.5 GiB", 1 << 40: "1.0 TiB"} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
	for d, want := range map[time.Duration]string{850 * time.Millisecond: "850ms", 3200 * time.Millisecond: "3.2s", 65 * time.Second: "1m05s", 2*time.Hour + 3*time.Minute: "2h03m", -1: "-"} {
		if got := Duration(d); got != want {
			t.Errorf("Duration(%v) = %q, want %q", d, got, want)
		}
	}
	if Rate(0) != "-" || Rate(12.5*1024*1024) != "12.5 MiB/s" {
		t.Errorf("Rate: %q %q", Rate(0), Rate(12.5*1024*1024))
	}
	if Percent(1, 4) != "25%" || Percent(1, 0) != "-" {
		t.Errorf("Percent: %q %q", Percent(1, 4), Percent(1, 0))
	}
}

func TestBarAndFit(t *testing.T) {
	for _, c := range []struct {
		w    int
		f    float64
		want string
	}{{10, 0, "[          ]"}, {10, 0.05, "[>         ]"}, {10, 0.5, "[=====>    ]"}, {10, 1, "[==========]"}, {10, 7, "[==========]"}, {10, -1, "[          ]"}, {4, 0.99, "[===>]"}} {
		if got := Bar(c.w, c.f); got != c.want {
			t.Errorf("Bar(%d, %v) = %q, want %q", c.w, c.f, got, c.want)
		}
	}
	if Fit("abcdef", 4) != "abc…" || Fit("abc", 4) != "abc" || Fit("日本語です", 3) != "日本…" {
		t.Errorf("Fit: %q %q %q", Fit("abcdef", 4), Fit("abc", 4), Fit("日本語です", 3))
	}
}

func TestLiveOnATerminalRedrawsInPlace(t *testing.T) {
	var b bytes.Buffer
	l := NewLive(&b, true, 20)
	l.Draw("one", "two")
	l.Draw("three", "a line far too long for twenty columns")
	l.Println("log")
	l.Clear()
	want := "\x1b[Jone\x1b[K\ntwo\x1b[K\n" +
		"\x1b[2F\x1b[Jthree\x1b[K\na line far too lon…\x1b[K\n" +
		"\x1b[2F\x1b[Jlog\x1b[K\n" + "\x1b[Jthree\x1b[K\na line far too lon…\x1b[K\n" +
		"\x1b[2F\x1b[J"
	if got := b.String(); got != want {
		t.Errorf("terminal output\n got %q\nwant %q", got, want)
	}
}

func TestLiveWithoutATerminalPrintsChangesAsPlainLines(t *testing.T) {
	var b bytes.Buffer
	l := NewLive(&b, false, 0)
	l.Draw("step 1/3")
	l.Draw("step 1/3")
	l.Println("event")
	l.Draw("step 2/3")
	l.Clear()
	if got, want := b.String(), "step 1/3\nevent\nstep 2/3\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if strings.Contains(b.String(), "\x1b") {
		t.Error("escape sequence without a terminal")
	}
}

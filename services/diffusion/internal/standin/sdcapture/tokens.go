// Package sdcapture compares stand-in output with the reference captures of the real
// stable-diffusion.cpp (testdata/sdcpp). It is test support for the STAND-INS for
// stable-diffusion.cpp (see package standin), not the real engine.
//
// Tokens turns the stdout of sd-cli or sd-server into a sequence that no longer depends on
// timing: log lines with durations masked, every sampling bar update with its cells but not its
// speed, and one token per weight-loading bar with its final count (how many intermediate
// updates appear depends on timing).
package sdcapture

import (
	"fmt"
	"regexp"
	"strings"
)

// BarUpdate matches one progress bar update as sd.cpp prints it.
var BarUpdate = regexp.MustCompile(`^\r  \|([=># ]{50})\| (\d+)/(\d+) - (\d+\.\d\d)(it/s|s/it|MB/s|GB/s)\x1b\[K$`)

var (
	updates  = regexp.MustCompile(`\r[^\r]*?\x1b\[K`)
	seconds  = regexp.MustCompile(`\b\d+\.\d\ds\b`)
	millis   = regexp.MustCompile(`taking \d+ ms`)
	hex      = regexp.MustCompile(`0x[0-9a-f]+`)
	pids     = regexp.MustCompile(`(pid=|process )\d+`)
	seedLine = regexp.MustCompile(`(generating image: \d+/\d+ - seed )\d+`)
)

// Options adjust the normalisation.
type Options struct {
	MaskSeed bool // the seed was drawn at random (-s -1)
}

// Tokens normalises stdout bytes. It fails on a `\r` line that is not made of well-formed bar
// updates, and on a loading bar that does not end complete.
func Tokens(out []byte, opt Options) ([]string, error) {
	var toks []string
	lines := strings.SplitAfter(string(out), "\n")
	for i, line := range lines {
		if line == "" {
			continue
		}
		body := strings.TrimSuffix(line, "\n")
		if !strings.HasPrefix(body, "\r") {
			toks = append(toks, mask(body, opt))
			continue
		}
		ups := updates.FindAllString(body, -1)
		if strings.Join(ups, "") != body {
			return nil, fmt.Errorf("line %d: not only bar updates: %q", i+1, body)
		}
		var lastLoad []string
		for _, u := range ups {
			m := BarUpdate.FindStringSubmatch(u)
			if m == nil {
				return nil, fmt.Errorf("line %d: malformed bar update %q", i+1, u)
			}
			switch m[5] {
			case "MB/s", "GB/s":
				lastLoad = m
			default:
				toks = append(toks, fmt.Sprintf("BAR sampling |%s| %s/%s", m[1], m[2], m[3]))
			}
		}
		if lastLoad != nil {
			if lastLoad[2] != lastLoad[3] && strings.HasSuffix(line, "\n") {
				return nil, fmt.Errorf("line %d: loading bar ends at %s/%s", i+1, lastLoad[2], lastLoad[3])
			}
			toks = append(toks, fmt.Sprintf("BAR loading |%s| %s/%s", lastLoad[1], lastLoad[2], lastLoad[3]))
		}
		if !strings.HasSuffix(line, "\n") {
			toks = append(toks, "NO NEWLINE")
		}
	}
	return toks, nil
}

func mask(s string, opt Options) string {
	s = seconds.ReplaceAllString(s, "#.##s")
	s = millis.ReplaceAllString(s, "taking # ms")
	s = hex.ReplaceAllString(s, "0x#")
	s = pids.ReplaceAllString(s, "${1}#")
	if opt.MaskSeed {
		s = seedLine.ReplaceAllString(s, "${1}#")
	}
	return s
}

// BarUpdates returns every bar update in out, for format checks.
func BarUpdates(out []byte) []string {
	return updates.FindAllString(string(out), -1)
}

// Diff describes the first difference between two token sequences, with context; "" when equal.
func Diff(got, want []string) string {
	n := 0
	for n < len(got) && n < len(want) && got[n] == want[n] {
		n++
	}
	if n == len(got) && n == len(want) {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "first difference at token %d (got %d tokens, want %d)\n", n, len(got), len(want))
	for _, side := range []struct {
		name string
		toks []string
	}{{"got ", got}, {"want", want}} {
		for i := max(0, n-2); i < min(len(side.toks), n+3); i++ {
			fmt.Fprintf(&b, "  %s[%d] %q\n", side.name, i, side.toks[i])
		}
	}
	return b.String()
}

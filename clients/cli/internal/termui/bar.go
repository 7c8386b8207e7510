package termui

import (
	"strings"
	"unicode/utf8"
)

// Bar draws a progress bar of the given inner width for a fraction in 0..1:
// "[=========>          ]". Out-of-range fractions are clamped.
func Bar(width int, fraction float64) string {
	if width < 1 {
		width = 1
	}
	switch {
	case fraction < 0 || fraction != fraction:
		fraction = 0
	case fraction > 1:
		fraction = 1
	}
	full := int(fraction * float64(width))
	var b strings.Builder
	b.Grow(width + 2)
	b.WriteByte('[')
	b.WriteString(strings.Repeat("=", full))
	if full < width {
		if full > 0 || fraction > 0 {
			b.WriteByte('>')
		} else {
			b.WriteByte(' ')
		}
		b.WriteString(strings.Repeat(" ", width-full-1))
	}
	b.WriteByte(']')
	return b.String()
}

// Fit cuts s to at most width runes, ending it with "…" when cut.
func Fit(s string, width int) string {
	if width <= 0 || utf8.RuneCountInString(s) <= width {
		return s
	}
	r := []rune(s)
	if width == 1 {
		return "…"
	}
	return string(r[:width-1]) + "…"
}

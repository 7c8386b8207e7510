package termui

import (
	"strings"
	"unicode/utf8"
)

// Sanitize makes text from a model or an engine safe to print on a terminal: C0 control
// characters other than newline and tab become their Unicode control pictures (ESC shows
// as ␛, CR as ␍) so that no escape sequence or carriage return can reach the terminal;
// DEL, C1 controls and bidirectional overrides become U+FFFD; invalid UTF-8 bytes become
// U+FFFD. Printable text, U+FFFD included, is kept as it is.
func Sanitize(s string) string {
	if isSafe(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteRune(utf8.RuneError)
		case r == '\n' || r == '\t':
			b.WriteRune(r)
		case r < 0x20:
			b.WriteRune(0x2400 + r) // U+2400 CONTROL PICTURES
		case r == 0x7f:
			b.WriteRune(0x2421) // ␡
		case unsafeRune(r):
			b.WriteRune(utf8.RuneError)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// SanitizeLine is Sanitize for one line: newlines and tabs become spaces too.
func SanitizeLine(s string) string {
	s = Sanitize(s)
	if !strings.ContainsAny(s, "\n\t") {
		return s
	}
	return strings.NewReplacer("\n", " ", "\t", " ").Replace(s)
}

func isSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 {
			return false // check runes the slow way
		}
		if (c < 0x20 && c != '\n' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// unsafeRune reports C1 controls and the characters that reorder text on display.
func unsafeRune(r rune) bool {
	switch {
	case r >= 0x80 && r <= 0x9f:
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f, r == 0x061c:
		return true
	}
	return false
}

package termui

import (
	"encoding/base64"
	"fmt"
	"strings"
)

// ImageProtocol is a terminal's protocol for showing an image inline, in the text.
type ImageProtocol int

// The protocols genaictl writes. Both carry the PNG itself (base64), so no temporary
// file is shared with the terminal, which may be on another machine (ssh).
const (
	NoImages ImageProtocol = iota
	// Kitty is kitty's graphics protocol (kitty, Ghostty, Konsole): APC escapes of at
	// most 4096 base64 bytes each, f=100 (PNG), q=2 (no replies on stdin).
	Kitty
	// ITerm2 is iTerm2's inline image escape (iTerm2, WezTerm, mintty): one OSC 1337.
	ITerm2
)

// String is the protocol's name, as --show takes it.
func (p ImageProtocol) String() string {
	switch p {
	case Kitty:
		return "kitty"
	case ITerm2:
		return "iterm2"
	}
	return "none"
}

// ParseImageProtocol reads a --show value: kitty, iterm2 or none.
func ParseImageProtocol(s string) (ImageProtocol, error) {
	for _, p := range []ImageProtocol{NoImages, Kitty, ITerm2} {
		if s == p.String() {
			return p, nil
		}
	}
	return NoImages, fmt.Errorf("%q: want auto, kitty, iterm2 or none", s)
}

// DetectImageProtocol tells from the environment which protocol the terminal speaks,
// NoImages when it is not known to speak one. Inside tmux or screen it is NoImages: they
// drop both protocols unless passthrough is set up, and then the outer terminal is
// unknown (name it with --show).
func DetectImageProtocol(getenv func(string) string) ImageProtocol {
	term, prog := getenv("TERM"), getenv("TERM_PROGRAM")
	switch {
	case getenv("TMUX") != "" || strings.HasPrefix(term, "screen") || strings.HasPrefix(term, "tmux"):
		return NoImages
	case term == "xterm-kitty" || getenv("KITTY_WINDOW_ID") != "" || term == "xterm-ghostty" || prog == "ghostty" || getenv("KONSOLE_VERSION") != "":
		return Kitty
	case prog == "iTerm.app" || getenv("LC_TERMINAL") == "iTerm2" || prog == "WezTerm" || prog == "mintty":
		return ITerm2
	}
	return NoImages
}

// kittyChunk is the most base64 bytes kitty's protocol takes in one escape.
const kittyChunk = 4096

// InlineImage is the escape text that shows png inline in p, cols columns wide (the
// terminal keeps the aspect ratio), followed by a newline; "" for NoImages.
func InlineImage(p ImageProtocol, png []byte, cols int) string {
	data := base64.StdEncoding.EncodeToString(png)
	var b strings.Builder
	switch p {
	case Kitty:
		for i := 0; i == 0 || i < len(data); i += kittyChunk {
			chunk := data[i:min(i+kittyChunk, len(data))]
			more := 0
			if i+kittyChunk < len(data) {
				more = 1
			}
			if i == 0 {
				fmt.Fprintf(&b, "\x1b_Ga=T,f=100,q=2,c=%d,m=%d;%s\x1b\\", cols, more, chunk)
			} else {
				fmt.Fprintf(&b, "\x1b_Gm=%d;%s\x1b\\", more, chunk)
			}
		}
	case ITerm2:
		fmt.Fprintf(&b, "\x1b]1337;File=inline=1;size=%d;width=%d;preserveAspectRatio=1:%s\a", len(png), cols, data)
	default:
		return ""
	}
	b.WriteByte('\n')
	return b.String()
}

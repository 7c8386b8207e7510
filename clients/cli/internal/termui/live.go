package termui

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// Live is a block of lines at the bottom of the output that is redrawn in place on a
// terminal (progress bars, the resources view). Log lines printed with Println appear
// above it. When the output is not a terminal, Draw prints the block only when its text
// changed, as plain lines, and never writes an escape sequence.
type Live struct {
	w     io.Writer
	tty   bool
	width int
	shown int      // lines of the block on screen (terminal)
	last  []string // last block drawn
}

// NewLive writes to w; tty says whether w is a terminal of the given width (columns).
func NewLive(w io.Writer, tty bool, width int) *Live {
	if width <= 0 {
		width = 80
	}
	return &Live{w: w, tty: tty, width: width}
}

// TTY reports whether the output is a terminal.
func (l *Live) TTY() bool { return l.tty }

// Width is the terminal's width in columns.
func (l *Live) Width() int { return l.width }

// Draw replaces the block with lines.
func (l *Live) Draw(lines ...string) {
	if !l.tty {
		if slices.Equal(lines, l.last) {
			return
		}
		for _, s := range lines {
			fmt.Fprintln(l.w, s)
		}
		l.last = append(l.last[:0], lines...)
		return
	}
	var b strings.Builder
	l.clear(&b)
	for _, s := range lines {
		b.WriteString(Fit(s, l.width-1))
		b.WriteString("\x1b[K\n")
	}
	l.shown = len(lines)
	l.last = append(l.last[:0], lines...)
	io.WriteString(l.w, b.String())
}

// Println prints a line above the block (which is redrawn below it on a terminal).
func (l *Live) Println(s string) {
	if !l.tty {
		fmt.Fprintln(l.w, s)
		return
	}
	var b strings.Builder
	l.clear(&b)
	b.WriteString(s)
	b.WriteString("\x1b[K\n")
	shown := l.shown
	l.shown = 0
	io.WriteString(l.w, b.String())
	if shown > 0 {
		l.Draw(l.last...)
	}
}

// Clear removes the block from a terminal (a no-op otherwise).
func (l *Live) Clear() {
	if !l.tty || l.shown == 0 {
		return
	}
	var b strings.Builder
	l.clear(&b)
	l.shown = 0
	io.WriteString(l.w, b.String())
}

// clear moves the cursor to the first line of the block and erases to the end of the screen.
func (l *Live) clear(b *strings.Builder) {
	if l.shown > 0 {
		fmt.Fprintf(b, "\x1b[%dF", l.shown)
	}
	b.WriteString("\x1b[J")
}

// Package sdbar renders the progress bars of stable-diffusion.cpp. It is part of the STAND-INS
// for stable-diffusion.cpp (see package standin), not the real engine.
//
// A bar update is `\r  |` + 50 cells + `| STEP/TOTAL - SPEED\e[K`, followed by `\n` only when
// STEP == TOTAL. Cells before floor(STEP*50/TOTAL) are filled, the cell at that position is
// the head, the rest are spaces. Sampling bars fill with `=` and use `>` as the head; weight
// loading bars use `#` for both. The speed of a sampling step is `%.2fit/s` when the step took
// under a second and `%.2fs/it` otherwise; loading speeds are `%.2fMB/s` (or GB/s).
package sdbar

import (
	"fmt"
	"strings"
	"time"
)

// Width is the number of cells between the bars.
const Width = 50

// Kind selects the cell characters.
type Kind int

// Bar kinds.
const (
	Sampling Kind = iota // `=` cells, `>` head
	Loading              // `#` cells and head
)

// Render returns one bar update, including the leading `\r`, the trailing `\e[K` and, on the
// last step, the `\n`.
func Render(kind Kind, step, total int, speed string) string {
	fill, head := byte('='), byte('>')
	if kind == Loading {
		fill, head = '#', '#'
	}
	pos := 0
	if total > 0 {
		pos = step * Width / total
	}
	var b strings.Builder
	b.Grow(Width + 32)
	b.WriteString("\r  |")
	for i := 0; i < Width; i++ {
		switch {
		case i < pos:
			b.WriteByte(fill)
		case i == pos:
			b.WriteByte(head)
		default:
			b.WriteByte(' ')
		}
	}
	fmt.Fprintf(&b, "| %d/%d - %s\x1b[K", step, total, speed)
	if step == total {
		b.WriteByte('\n')
	}
	return b.String()
}

// StepSpeed formats the speed of one sampling step that took d.
func StepSpeed(d time.Duration) string {
	s := d.Seconds()
	if s <= 0 {
		s = 1e-6
	}
	if s > 1 {
		return fmt.Sprintf("%.2fs/it", s)
	}
	return fmt.Sprintf("%.2fit/s", 1/s)
}

// ByteSpeed formats a loading speed: bytes read in d, in MB/s (MiB), or GB/s from 1024 MB/s.
func ByteSpeed(bytes int64, d time.Duration) string {
	s := d.Seconds()
	if s <= 0 {
		s = 1e-6
	}
	mb := float64(bytes) / (1024 * 1024) / s
	if mb >= 1024 {
		return fmt.Sprintf("%.2fGB/s", mb/1024)
	}
	return fmt.Sprintf("%.2fMB/s", mb)
}

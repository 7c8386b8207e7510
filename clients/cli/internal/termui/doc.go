// Package termui is genaictl's terminal output: text made safe to print, human sizes,
// rates and durations, progress bars, inline images (kitty's and iTerm2's escapes), and a
// live region that redraws in place on a terminal. Everything but Live is a pure function.
package termui

package sdcli

// tail keeps the last n lines added.
type tail struct {
	n     int
	lines []string
}

func (t *tail) add(s string) {
	if s == "" {
		return
	}
	if len(t.lines) == t.n {
		copy(t.lines, t.lines[1:])
		t.lines = t.lines[:t.n-1]
	}
	t.lines = append(t.lines, s)
}

func (t *tail) get() []string { return append([]string(nil), t.lines...) }

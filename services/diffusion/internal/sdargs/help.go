package sdargs

import "strings"

// Flags is the set of long flags ("--backend") a stable-diffusion.cpp binary offers.
type Flags map[string]bool

// Has reports whether flag is offered.
func (f Flags) Has(flag string) bool { return f[flag] }

// ParseHelp reads the flags out of sd-cli's or sd-server's --help text: every option line
// starts (after indentation) with "-x, --long" or "--long", followed by its argument and
// description. Continuation lines of descriptions are indented further and start with no dash.
func ParseHelp(help string) Flags {
	f := Flags{}
	for _, line := range strings.Split(help, "\n") {
		t := strings.TrimLeft(line, " \t")
		if !strings.HasPrefix(t, "-") || len(t) == len(line) {
			continue // not an indented option line
		}
		for _, field := range strings.Fields(t) {
			field = strings.TrimSuffix(field, ",")
			if !strings.HasPrefix(field, "-") {
				break // the argument or the description
			}
			if strings.HasPrefix(field, "--") && len(field) > 2 {
				f[field] = true
			}
		}
	}
	return f
}

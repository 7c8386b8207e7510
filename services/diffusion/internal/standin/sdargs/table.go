// Package sdargs parses command lines the way stable-diffusion.cpp's examples/common does, with
// the option table read from the captured `--help` text. It is part of the STAND-INS for
// stable-diffusion.cpp (see package standin), not the real engine.
//
// sd.cpp has five kinds of options: `<string>`, `<int>` and `<float>` options take the next
// argument; bool options take none; "manual" options run a callback, which for all but --help
// and --list-devices consumes the next argument. The help prints each section's options in that
// order, so an untyped option is a bool until the section's first manual option.
package sdargs

import (
	"bufio"
	"fmt"
	"regexp"
	"strings"
)

// Kind is the kind of an option.
type Kind int

// Option kinds, in the order sd.cpp prints them.
const (
	String Kind = iota
	Int
	Float
	Bool
	Manual
)

// Option is one entry of the help text.
type Option struct {
	Short, Long string
	Kind        Kind
	Section     string
}

// Name is the long name, or the short one when there is none.
func (o *Option) Name() string {
	if o.Long != "" {
		return o.Long
	}
	return o.Short
}

// TakesValue reports whether the option consumes the next argument.
func (o *Option) TakesValue() bool {
	switch o.Kind {
	case Bool:
		return false
	case Manual:
		return !noValueManual[o.Long]
	}
	return true
}

// Table is the set of options of one program.
type Table struct {
	Options []*Option
	byName  map[string]*Option
}

// firstManual names the first manual option of each section of sd-cli's and sd-server's help.
var firstManual = map[string]bool{"--mode": true, "--type": true, "--seed": true, "--help": true}

// noValueManual are the manual options that take no argument.
var noValueManual = map[string]bool{"--help": true, "--list-devices": true}

var optionLine = regexp.MustCompile(`^  (-[^\s,]+)(?:, (--[^\s]+))?(?: <(string|int|float)>)?(?:\s|$)`)

// ParseHelp reads the option table from a help text as sd-cli or sd-server print it.
func ParseHelp(help string) (*Table, error) {
	t := &Table{byName: map[string]*Option{}}
	section := ""
	manual := false
	sc := bufio.NewScanner(strings.NewReader(help))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasSuffix(line, "Options:") && !strings.HasPrefix(line, " ") {
			section, manual = strings.TrimSuffix(line, ":"), false
			continue
		}
		m := optionLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		o := &Option{Section: section}
		if strings.HasPrefix(m[1], "--") {
			o.Long = m[1]
		} else {
			o.Short, o.Long = m[1], m[2]
		}
		switch m[3] {
		case "string":
			o.Kind = String
		case "int":
			o.Kind = Int
		case "float":
			o.Kind = Float
		default:
			if firstManual[o.Long] {
				manual = true
			}
			o.Kind = Bool
			if manual {
				o.Kind = Manual
			}
		}
		for _, n := range []string{o.Short, o.Long} {
			if n == "" {
				continue
			}
			if _, dup := t.byName[n]; dup {
				return nil, fmt.Errorf("parse help: option %s listed twice", n)
			}
			t.byName[n] = o
		}
		t.Options = append(t.Options, o)
	}
	if len(t.Options) == 0 {
		return nil, fmt.Errorf("parse help: no options found")
	}
	return t, nil
}

// Lookup finds an option by its exact short or long name.
func (t *Table) Lookup(name string) (*Option, bool) {
	o, ok := t.byName[name]
	return o, ok
}

package sdargs

import (
	"errors"
	"fmt"
)

// UnknownArgError is an argument that names no option
// (`error: unknown argument: %s`, common.cpp:325).
type UnknownArgError struct{ Arg string }

func (e *UnknownArgError) Error() string { return "unknown argument: " + e.Arg }

// InvalidParamError is an option whose value is missing or was refused by its callback
// (`error: invalid parameter for argument: %s`, common.cpp:320).
type InvalidParamError struct{ Arg string }

func (e *InvalidParamError) Error() string { return "invalid parameter for argument: " + e.Arg }

// TerminateError is an uncaught C++ exception thrown while converting a value (std::stoi and
// friends): the real program prints the terminate message and aborts.
type TerminateError struct {
	Exception string // std::invalid_argument or std::out_of_range
	What      string // stoi, stof, stoll
}

func (e *TerminateError) Error() string {
	return fmt.Sprintf("terminate called after throwing an instance of '%s'", e.Exception)
}

// Message is what libstdc++ prints on stderr before aborting.
func (e *TerminateError) Message() string {
	return fmt.Sprintf("terminate called after throwing an instance of '%s'\n  what():  %s\n", e.Exception, e.What)
}

// Hook handles a manual option with its value ("" for options without one). It may log its own
// error; returning an error turns into InvalidParamError. Returning ErrStop ends parsing at once
// (for --help and --version).
type Hook func(o *Option, value string) error

// ErrStop is returned by a Hook to end parsing without an error.
var ErrStop = errors.New("stop parsing")

// Args are the parsed values, by option name (long name when there is one).
type Args struct {
	values map[string]string
	set    map[string]bool
}

// Has reports whether the option was given.
func (a *Args) Has(name string) bool { return a.set[name] }

// String is the last value given for the option, or def.
func (a *Args) String(name, def string) string {
	if v, ok := a.values[name]; ok {
		return v
	}
	return def
}

// Int is the option's value converted as std::stoi would (it was checked while parsing).
func (a *Args) Int(name string, def int) int {
	if v, ok := a.values[name]; ok {
		n, _ := Stoi(v)
		return n
	}
	return def
}

// Int64 is the option's value converted as std::stoll would.
func (a *Args) Int64(name string, def int64) int64 {
	if v, ok := a.values[name]; ok {
		n, _ := Stoll(v)
		return n
	}
	return def
}

// Float is the option's value converted as std::stof would.
func (a *Args) Float(name string, def float32) float32 {
	if v, ok := a.values[name]; ok {
		f, _ := Stof(v)
		return f
	}
	return def
}

// Parse walks args (without argv[0]) as sd.cpp's parse_options does: each argument must be an
// exact option name; typed options take the next argument and convert it at once; manual
// options call hook. The first problem ends parsing.
func (t *Table) Parse(args []string, hook Hook) (*Args, error) {
	a := &Args{values: map[string]string{}, set: map[string]bool{}}
	for i := 0; i < len(args); i++ {
		arg := args[i]
		o, ok := t.Lookup(arg)
		if !ok {
			return a, &UnknownArgError{Arg: arg}
		}
		value := ""
		if o.TakesValue() {
			if i+1 >= len(args) {
				return a, &InvalidParamError{Arg: arg}
			}
			i++
			value = args[i]
		}
		switch o.Kind {
		case Int:
			if _, err := Stoi(value); err != nil {
				return a, err
			}
		case Float:
			if _, err := Stof(value); err != nil {
				return a, err
			}
		case Manual:
			if hook != nil {
				if err := hook(o, value); err != nil {
					if errors.Is(err, ErrStop) {
						return a, err
					}
					if _, term := err.(*TerminateError); term {
						return a, err
					}
					return a, &InvalidParamError{Arg: arg}
				}
			}
		}
		a.values[o.Name()] = value
		a.set[o.Name()] = true
	}
	return a, nil
}

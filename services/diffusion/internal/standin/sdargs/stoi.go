package sdargs

import (
	"math"
	"regexp"
	"strconv"
	"strings"
)

// isCSpace is C's isspace in the "C" locale.
func isCSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// integerPrefix returns the leading decimal integer of s as strtol reads it: leading white
// space, an optional sign, then digits. ok is false when no digit was read.
func integerPrefix(s string) (string, bool) {
	i := 0
	for i < len(s) && isCSpace(s[i]) {
		i++
	}
	start := i
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	d := i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == d {
		return "", false
	}
	return s[start:i], true
}

// Stoi converts like std::stoi: the leading integer of s; trailing text is ignored.
func Stoi(s string) (int, error) {
	p, ok := integerPrefix(s)
	if !ok {
		return 0, &TerminateError{Exception: "std::invalid_argument", What: "stoi"}
	}
	n, err := strconv.ParseInt(p, 10, 64)
	if err != nil || n < math.MinInt32 || n > math.MaxInt32 {
		return 0, &TerminateError{Exception: "std::out_of_range", What: "stoi"}
	}
	return int(n), nil
}

// Stoll converts like std::stoll.
func Stoll(s string) (int64, error) {
	p, ok := integerPrefix(s)
	if !ok {
		return 0, &TerminateError{Exception: "std::invalid_argument", What: "stoll"}
	}
	n, err := strconv.ParseInt(p, 10, 64)
	if err != nil {
		return 0, &TerminateError{Exception: "std::out_of_range", What: "stoll"}
	}
	return n, nil
}

var floatPrefix = regexp.MustCompile(`^[+-]?(?i:infinity|inf|nan|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:e[+-]?[0-9]+)?)`)

// Stof converts like std::stof: the leading decimal float of s (hexadecimal floats are not
// supported by the stand-in).
func Stof(s string) (float32, error) {
	s = strings.TrimLeftFunc(s, func(r rune) bool { return r < 128 && isCSpace(byte(r)) })
	p := floatPrefix.FindString(s)
	if p == "" {
		return 0, &TerminateError{Exception: "std::invalid_argument", What: "stof"}
	}
	f, err := strconv.ParseFloat(p, 32)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return 0, &TerminateError{Exception: "std::out_of_range", What: "stof"}
		}
		return 0, &TerminateError{Exception: "std::invalid_argument", What: "stof"}
	}
	return float32(f), nil
}

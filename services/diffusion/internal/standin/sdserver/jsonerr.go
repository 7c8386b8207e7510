package sdserver

import (
	"fmt"
	"strings"
)

// nlohmannParseError describes why body is not JSON the way nlohmann::json's parser does:
// `[json.exception.parse_error.101] parse error at line L, column C: syntax error while parsing
// CONTEXT - unexpected TOKEN; expected EXPECTED`. ok is false when body is valid JSON. The
// structure follows nlohmann's parser; lexer errors are reduced to the common cases.
func nlohmannParseError(body []byte) (msg string, ok bool) {
	p := &jsonParser{src: body}
	err := p.document()
	if err == nil {
		return "", false
	}
	line, col := 1, 0
	for i := 0; i < p.errPos && i < len(body); i++ {
		if body[i] == '\n' {
			line, col = line+1, 0
		} else {
			col++
		}
	}
	col++ // the offending character itself (or the end of input) counts too
	return fmt.Sprintf("[json.exception.parse_error.101] parse error at line %d, column %d: %s", line, col, err.Error()), true
}

type jsonParser struct {
	src    []byte
	pos    int
	errPos int // index of the last character read when the error was found
}

type tokenKind int

const (
	tokEOF tokenKind = iota
	tokBeginObject
	tokEndObject
	tokBeginArray
	tokEndArray
	tokColon
	tokComma
	tokString
	tokNumber
	tokTrue
	tokFalse
	tokNull
	tokInvalid
)

var tokenName = map[tokenKind]string{
	tokEOF: "end of input", tokBeginObject: "'{'", tokEndObject: "'}'", tokBeginArray: "'['", tokEndArray: "']'",
	tokColon: "':'", tokComma: "','", tokString: "string literal", tokNumber: "number literal",
	tokTrue: "'true' literal", tokFalse: "'false' literal", tokNull: "'null' literal",
}

type token struct {
	kind  tokenKind
	start int
	text  string // for invalid tokens: what was read
	lexed string // lexer error message for invalid tokens
}

func (p *jsonParser) next() token {
	for p.pos < len(p.src) && strings.IndexByte(" \t\n\r", p.src[p.pos]) >= 0 {
		p.pos++
	}
	if p.pos >= len(p.src) {
		p.errPos = len(p.src)
		return token{kind: tokEOF, start: p.pos}
	}
	start := p.pos
	c := p.src[p.pos]
	p.pos++
	p.errPos = start
	single := map[byte]tokenKind{'{': tokBeginObject, '}': tokEndObject, '[': tokBeginArray, ']': tokEndArray, ':': tokColon, ',': tokComma}
	if k, ok := single[c]; ok {
		return token{kind: k, start: start}
	}
	switch {
	case c == '"':
		for p.pos < len(p.src) {
			switch p.src[p.pos] {
			case '\\':
				p.pos += 2
				continue
			case '"':
				p.pos++
				p.errPos = p.pos - 1
				return token{kind: tokString, start: start}
			}
			if p.src[p.pos] < 0x20 {
				p.errPos = p.pos
				return token{kind: tokInvalid, start: start, text: string(p.src[start : p.pos+1]), lexed: "invalid string: control character must be escaped"}
			}
			p.pos++
		}
		p.errPos = len(p.src)
		return token{kind: tokInvalid, start: start, text: string(p.src[start:]), lexed: "invalid string: missing closing quote"}
	case c == '-' || (c >= '0' && c <= '9'):
		for p.pos < len(p.src) && strings.IndexByte("0123456789+-.eE", p.src[p.pos]) >= 0 {
			p.pos++
		}
		p.errPos = p.pos - 1
		return token{kind: tokNumber, start: start}
	}
	for _, lit := range []struct {
		word string
		kind tokenKind
	}{{"true", tokTrue}, {"false", tokFalse}, {"null", tokNull}} {
		if strings.HasPrefix(string(p.src[start:]), lit.word) {
			p.pos = start + len(lit.word)
			p.errPos = p.pos - 1
			return token{kind: lit.kind, start: start}
		}
	}
	return token{kind: tokInvalid, start: start, text: string(c), lexed: "invalid literal"}
}

type syntaxError struct {
	context  string
	got      token
	expected string
}

func (e *syntaxError) Error() string {
	what := "unexpected " + tokenName[e.got.kind]
	if e.got.kind == tokInvalid {
		what = e.got.lexed + "; last read: '" + e.got.text + "'"
	}
	return fmt.Sprintf("syntax error while parsing %s - %s; expected %s", e.context, what, e.expected)
}

const valueExpected = "'[', '{', or a literal"

func (p *jsonParser) document() error {
	if err := p.value(p.next()); err != nil {
		return err
	}
	if t := p.next(); t.kind != tokEOF {
		return &syntaxError{"value", t, "end of input"}
	}
	return nil
}

func (p *jsonParser) value(t token) error {
	switch t.kind {
	case tokString, tokNumber, tokTrue, tokFalse, tokNull:
		return nil
	case tokBeginObject:
		t = p.next()
		if t.kind == tokEndObject {
			return nil
		}
		for {
			if t.kind != tokString {
				return &syntaxError{"object key", t, "string literal"}
			}
			if t = p.next(); t.kind != tokColon {
				return &syntaxError{"object separator", t, "':'"}
			}
			if err := p.value(p.next()); err != nil {
				return err
			}
			switch t = p.next(); t.kind {
			case tokEndObject:
				return nil
			case tokComma:
				t = p.next()
			default:
				return &syntaxError{"object", t, "'}'"}
			}
		}
	case tokBeginArray:
		t = p.next()
		if t.kind == tokEndArray {
			return nil
		}
		for {
			if err := p.value(t); err != nil {
				return err
			}
			switch t = p.next(); t.kind {
			case tokEndArray:
				return nil
			case tokComma:
				t = p.next()
			default:
				return &syntaxError{"array", t, "']'"}
			}
		}
	}
	return &syntaxError{"value", t, valueExpected}
}

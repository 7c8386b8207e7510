package sdserver

import "testing"

func TestNlohmannParseError(t *testing.T) {
	for body, want := range map[string]string{
		`{"prompt": `: "[json.exception.parse_error.101] parse error at line 1, column 12: syntax error while parsing value - unexpected end of input; expected '[', '{', or a literal",
		`{"a": x}`:    "[json.exception.parse_error.101] parse error at line 1, column 7: syntax error while parsing value - invalid literal; last read: 'x'; expected '[', '{', or a literal",
		"{\n\"a\" 1}": "[json.exception.parse_error.101] parse error at line 2, column 5: syntax error while parsing object separator - unexpected number literal; expected ':'",
		`{"a":1`:      "[json.exception.parse_error.101] parse error at line 1, column 7: syntax error while parsing object - unexpected end of input; expected '}'",
		`[1,2}`:       "[json.exception.parse_error.101] parse error at line 1, column 5: syntax error while parsing array - unexpected '}'; expected ']'",
		`{} {}`:       "[json.exception.parse_error.101] parse error at line 1, column 4: syntax error while parsing value - unexpected '{'; expected end of input",
	} {
		got, ok := nlohmannParseError([]byte(body))
		if !ok || got != want {
			t.Errorf("%q:\n got %q\nwant %q", body, got, want)
		}
	}
	if _, ok := nlohmannParseError([]byte(`{"a":[1,{"b":null}],"c":"d\"e"}`)); ok {
		t.Error("valid JSON reported as an error")
	}
}

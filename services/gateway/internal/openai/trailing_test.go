package openai_test

import (
	"strings"
	"testing"
)

// Regression (issue 14's fault suite, found by FuzzChatCompletions): a body with data after
// its JSON object, such as `{"messages":[...]}0`, was answered 200: the decoder read the
// first value and ignored the rest. Now it is 400 with OpenAI's error object, on both
// routes; trailing white space stays fine.
func TestTrailingDataAfterTheJSONBodyIs400(t *testing.T) {
	srv := serveFuzz(t)
	for path, body := range map[string]string{
		"chat/completions":   `{"messages":[{"role":"user","content":"hi"}]}`,
		"images/generations": `{"prompt":"a fox"}`,
	} {
		url := srv.URL + "/openai/v1/" + path
		for _, tail := range []string{"0", " {}", `"x"`, "}", " garbage"} {
			status, _, answer := postRaw(t, url, []byte(body+tail))
			if status != 400 || !strings.Contains(string(answer), "after the JSON body") {
				t.Errorf("%s %q: %d %s", path, body+tail, status, answer)
			}
			wantOpenAIError(t, status, answer)
		}
		if status, _, answer := postRaw(t, url, []byte(body+" \n\t")); status != 200 {
			t.Errorf("%s with trailing white space: %d %s", path, status, answer)
		}
	}
}

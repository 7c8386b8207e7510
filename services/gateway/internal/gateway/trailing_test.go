package gateway_test

import (
	"net/http"
	"strings"
	"testing"
)

// Regression (issue 14's fault suite, the gateway side of what FuzzChatCompletions found on
// the OpenAI surface): the seed route answered `{"prompt":"x"}0` with 200, the decoder
// having read the first JSON value and ignored the rest. Now data after the body's JSON
// value is 400 with the seed's error JSON, before the backend is called; trailing white
// space and an empty body (an empty request) stay as they were.
func TestTrailingDataAfterTheJSONBodyIs400(t *testing.T) {
	orch := &validatingOrchestrator{}
	url := startGateway(t, orch, "") + "/v1/images/generations"
	for _, tail := range []string{"0", " {}", `"x"`, "}", " garbage"} {
		resp, body := post(t, url, []byte(`{"prompt":"x"}`+tail))
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "after the JSON body") {
			t.Errorf("%q: %d %s", tail, resp.StatusCode, body)
		}
		seedErrorShape(t, body)
		if got := orch.take(); got != nil {
			t.Errorf("%q: the backend was called with %v", tail, got)
		}
	}
	if resp, body := post(t, url, []byte("{\"prompt\":\"x\"} \n\t")); resp.StatusCode != http.StatusOK {
		t.Errorf("trailing white space: %d %s", resp.StatusCode, body)
	}
}

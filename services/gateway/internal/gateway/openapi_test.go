package gateway_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// Issue 15, rough edge 7: /openapi.json was titled with a proto file name, had the
// version "version not set", documented no error responses and left out /openai/v1. The
// served document is the merged one (package apidoc).
func TestServedOpenAPIDocument(t *testing.T) {
	url := startGateway(t, &recordingOrchestrator{}, "")
	resp, err := http.Get(url + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	type op struct {
		Responses map[string]struct {
			Schema struct {
				Ref string `json:"$ref"`
			} `json:"schema"`
		} `json:"responses"`
	}
	var doc struct {
		Info struct {
			Title, Version string
		} `json:"info"`
		Paths       map[string]map[string]op `json:"paths"`
		Definitions map[string]any           `json:"definitions"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %q: %v", resp.StatusCode, resp.Header.Get("Content-Type"), err)
	}
	if doc.Info.Title != "genailab REST API" || doc.Info.Version != "v1" {
		t.Errorf("info %+v", doc.Info)
	}
	for path, want := range map[string]string{
		"/v1/llm/chat post":                             "#/definitions/genailabError",
		"/v1/images/generations post":                   "#/definitions/seedError",
		"/health get":                                   "#/definitions/seedError",
		"/openai/v1/images/generations post":            "#/definitions/openaiError",
		"/openai/v1/images/edits post":                  "#/definitions/openaiError",
		"/openai/v1/chat/completions post":              "#/definitions/openaiError",
		"/openai/v1/models get":                         "#/definitions/openaiError",
		"/v1/images/jobs/{id} get":                      "#/definitions/genailabError",
		"/v1/models/downloads/{downloadId}/cancel post": "#/definitions/genailabError",
	} {
		i := strings.LastIndexByte(path, ' ')
		p, m := path[:i], path[i+1:]
		if got := doc.Paths[p][m].Responses["default"].Schema.Ref; got != want {
			t.Errorf("%s: error response %q, want %q", path, got, want)
		}
	}
}

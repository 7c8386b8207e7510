package apidoc_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/genailab/genailab/gen/openapi"
	"github.com/genailab/genailab/services/gateway/internal/apidoc"
	"github.com/genailab/genailab/services/gateway/internal/openai"
)

type operation struct {
	Responses map[string]struct {
		Schema struct {
			Ref string `json:"$ref"`
		} `json:"schema"`
	} `json:"responses"`
}

type document struct {
	Info struct {
		Title, Version string
	} `json:"info"`
	Paths       map[string]map[string]json.RawMessage `json:"paths"`
	Definitions map[string]json.RawMessage            `json:"definitions"`
}

func build(t *testing.T) (document, []byte) {
	t.Helper()
	b, err := apidoc.Build(openapi.JSON, apidoc.Fragment{JSON: openai.OpenAPI, ErrorDefinition: openai.ErrorDefinition})
	if err != nil {
		t.Fatal(err)
	}
	var doc document
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return doc, b
}

// Issue 15, rough edge 7: the document's title was a proto file name, its version
// "version not set"; it documented no error and left out /openai/v1.
func TestDocumentHasTitleVersionErrorsAndTheOpenAIRoutes(t *testing.T) {
	doc, raw := build(t)
	if doc.Info.Title != "genailab REST API" || doc.Info.Version != "v1" {
		t.Errorf("info %+v", doc.Info)
	}
	for _, route := range openai.Routes() {
		method, path, _ := strings.Cut(route, " ")
		if _, ok := doc.Paths[path][strings.ToLower(method)]; !ok {
			t.Errorf("%s is not documented", route)
		}
	}
	n := 0
	for path, item := range doc.Paths {
		for method, rawOp := range item {
			if method == "parameters" {
				continue
			}
			var op operation
			if err := json.Unmarshal(rawOp, &op); err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			want := "#/definitions/" + apidoc.ErrorDefinition
			switch {
			case strings.HasPrefix(path, "/openai/v1/"):
				want = "#/definitions/" + openai.ErrorDefinition
			case path == "/v1/images/generations" && method == "post", path == "/health" && method == "get":
				want = "#/definitions/" + apidoc.SeedErrorDefinition
			}
			if got := op.Responses["default"].Schema.Ref; got != want {
				t.Errorf("%s %s: error response %q, want %q", method, path, got, want)
			}
			if _, ok := op.Responses["200"]; !ok {
				t.Errorf("%s %s: no success response", method, path)
			}
			n++
		}
	}
	if n < 40 {
		t.Errorf("only %d operations documented", n)
	}
	// Every reference resolves.
	for _, ref := range strings.Split(string(raw), `"$ref": "#/definitions/`)[1:] {
		name, _, _ := strings.Cut(ref, `"`)
		if _, ok := doc.Definitions[name]; !ok {
			t.Errorf("dangling $ref to %s", name)
		}
	}
	var rest struct {
		Properties map[string]any `json:"properties"`
	}
	_ = json.Unmarshal(doc.Definitions[apidoc.ErrorDefinition], &rest)
	for _, f := range []string{"error", "code", "reason"} {
		if _, ok := rest.Properties[f]; !ok {
			t.Errorf("the REST error body documents no %q", f)
		}
	}
}

func TestFragmentMustNotRedefine(t *testing.T) {
	dup := []byte(`{"paths": {"/health": {"get": {"responses": {}}}}, "definitions": {"e": {}}}`)
	if _, err := apidoc.Build(openapi.JSON, apidoc.Fragment{JSON: dup, ErrorDefinition: "e"}); err == nil || !strings.Contains(err.Error(), "/health") {
		t.Fatalf("a fragment that documents /health again: %v", err)
	}
	if _, err := apidoc.Build(openapi.JSON, apidoc.Fragment{JSON: []byte(`{"paths": {}}`), ErrorDefinition: "missing"}); err == nil {
		t.Fatal("a fragment without its error definition was accepted")
	}
}

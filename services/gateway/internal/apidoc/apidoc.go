// Package apidoc builds the OpenAPI (Swagger 2.0) document that the gateway serves at
// /openapi.json: the one protoc-gen-openapiv2 generates from the protos (gen/openapi, its
// title and version from proto/openapi.yaml), with what the generator cannot know added
// once, at start:
//
//   - the error responses: every operation gets a "default" response with the body the
//     gateway answers errors with (package httperr): {"error", "code", "reason"} on the
//     REST routes, exactly {"error"} on the seed contract's own routes (POST
//     /v1/images/generations, GET /health), OpenAI's error object under /openai/v1;
//   - the OpenAI-compatible routes, which are hand-written (package openai) and merged
//     from their own fragment.
package apidoc

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Definitions of the error bodies.
const (
	// ErrorDefinition is the REST error body.
	ErrorDefinition = "genailabError"
	// SeedErrorDefinition is the seed contract's error body.
	SeedErrorDefinition = "seedError"
)

// errorDescription is the "default" response of every operation: the statuses are
// httperr's table.
const errorDescription = "An error, with the HTTP status of its gRPC code: 400 bad request (INVALID_ARGUMENT), " +
	"401 no or wrong token, 403, 404 not found (or an unknown route), 405, 409, 413 body too large, " +
	"429 queue full (Retry-After), 500 engine failure or cancelled, 501, 503 busy, not running or unavailable " +
	"(Retry-After), 504 deadline exceeded. A stream that fails after its first message ends with one line " +
	"{\"error\", \"code\", \"reason\"} instead."

var definitions = map[string]any{
	ErrorDefinition: map[string]any{
		"type":        "object",
		"description": "The gateway's error body. \"error\" is the seed's field; code and reason let a client branch without reading the message.",
		"required":    []string{"error"},
		"properties": map[string]any{
			"error":  map[string]any{"type": "string", "description": "What went wrong, in words."},
			"code":   map[string]any{"type": "string", "description": "The gRPC code's name, for example INVALID_ARGUMENT or RESOURCE_EXHAUSTED."},
			"reason": map[string]any{"type": "string", "description": "A stable reason (google.rpc.ErrorInfo), for example QUEUE_FULL or ENGINE_BUSY."},
		},
	},
	SeedErrorDefinition: map[string]any{
		"type":        "object",
		"description": "The seed contract's error body, exactly {\"error\": \"...\"}.",
		"required":    []string{"error"},
		"properties": map[string]any{
			"error": map[string]any{"type": "string", "description": "What went wrong, in words (for example \"Server is busy generating another image\")."},
		},
	},
}

// seedRoutes are the seed contract's operations (path and lower-case method), whose
// errors are exactly {"error"}.
var seedRoutes = map[string]string{"/v1/images/generations": "post", "/health": "get"}

// Fragment is a part of the document written by hand: paths, definitions and tags to
// merge, and the definition of the errors its operations answer with.
type Fragment struct {
	JSON            []byte
	ErrorDefinition string
}

// Build merges base (the generated document) with the fragments and adds the error
// responses. A path or definition that a fragment shares with base is an error.
func Build(base []byte, fragments ...Fragment) ([]byte, error) {
	var doc map[string]any
	if err := json.Unmarshal(base, &doc); err != nil {
		return nil, fmt.Errorf("read the generated OpenAPI document: %w", err)
	}
	paths := object(doc, "paths")
	defs := object(doc, "definitions")
	for name, d := range definitions {
		if _, ok := defs[name]; ok {
			return nil, fmt.Errorf("the generated OpenAPI document already defines %s", name)
		}
		defs[name] = d
	}
	for p, item := range paths {
		for method, op := range asObject(item) {
			def := ErrorDefinition
			if seedRoutes[p] == method {
				def = SeedErrorDefinition
			}
			addError(asObject(op), def)
		}
	}
	for i, f := range fragments {
		var part map[string]any
		if err := json.Unmarshal(f.JSON, &part); err != nil {
			return nil, fmt.Errorf("read OpenAPI fragment %d: %w", i, err)
		}
		for name, d := range object(part, "definitions") {
			if _, ok := defs[name]; ok {
				return nil, fmt.Errorf("OpenAPI fragment %d: definition %s is already defined", i, name)
			}
			defs[name] = d
		}
		if _, ok := defs[f.ErrorDefinition]; !ok {
			return nil, fmt.Errorf("OpenAPI fragment %d: no definition %q for its errors", i, f.ErrorDefinition)
		}
		for p, item := range object(part, "paths") {
			if _, ok := paths[p]; ok {
				return nil, fmt.Errorf("OpenAPI fragment %d: path %s is already documented", i, p)
			}
			for _, op := range asObject(item) {
				addError(asObject(op), f.ErrorDefinition)
			}
			paths[p] = item
		}
		if tags, ok := part["tags"].([]any); ok {
			base, _ := doc["tags"].([]any)
			doc["tags"] = append(base, tags...)
		}
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("write the OpenAPI document: %w", err)
	}
	return b, nil
}

// addError gives op its "default" (error) response, with the body of definition def.
func addError(op map[string]any, def string) {
	if op == nil {
		return
	}
	responses := object(op, "responses")
	desc := errorDescription
	if def != ErrorDefinition {
		desc = strings.Replace(errorDescription, ` A stream that fails after its first message ends with one line {"error", "code", "reason"} instead.`, "", 1)
	}
	responses["default"] = map[string]any{
		"description": desc,
		"schema":      map[string]any{"$ref": "#/definitions/" + def},
	}
}

// object returns m[key] as an object, creating it when missing.
func object(m map[string]any, key string) map[string]any {
	if o, ok := m[key].(map[string]any); ok {
		return o
	}
	o := map[string]any{}
	m[key] = o
	return o
}

func asObject(v any) map[string]any {
	o, _ := v.(map[string]any)
	return o
}

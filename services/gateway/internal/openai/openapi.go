package openai

import _ "embed"

// OpenAPI is the surface's part of the gateway's OpenAPI (Swagger 2.0) document: its
// paths, tag and definitions, hand-written next to the handlers (grpc-gateway generates
// the rest from the protos). Every route of Routes has its path and method here, with
// its success response; the gateway adds the error response (definitions/openaiError)
// to each when it merges the document.
//
//go:embed openapi.json
var OpenAPI []byte

// ErrorDefinition is the definition, in OpenAPI, of the surface's error body.
const ErrorDefinition = "openaiError"

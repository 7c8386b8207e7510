// Package openapi embeds the OpenAPI (Swagger 2.0) document of the REST gateway, generated
// from the protos and proto/gateway.yaml by protoc-gen-openapiv2.
package openapi

import _ "embed"

// JSON is the merged OpenAPI document of every genailab service.
//
//go:embed genailab.swagger.json
var JSON []byte

module github.com/genailab/genailab/clients/go

go 1.26.0

replace (
	github.com/genailab/genailab/gen => ../../gen
	github.com/genailab/genailab/pkg => ../../pkg
)

require (
	github.com/genailab/genailab/gen v0.0.0
	github.com/genailab/genailab/pkg v0.0.0
	google.golang.org/grpc v1.85.0
	google.golang.org/protobuf v1.36.13-0.20261016172727-e9ee2a76ab8e
)

require (
	github.com/grpc-ecosystem/grpc-gateway/v2 v2.33.0 // indirect
	golang.org/x/net v0.61.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
	golang.org/x/text v0.43.0 // indirect
	google.golang.org/genproto/googleapis/api v0.0.0-20261026165753-2ffab32bce7e // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20261019180522-ce908d29299b // indirect
)

// Package pb holds the Go code generated from the Durable Task protocol's
// orchestrator_service.proto (vendored in ../protos, see its README for the upstream commit):
// the messages and the TaskHubSidecarService client and server interfaces.
//
// Nothing here is written by hand except this file and generate.sh. Regenerate with
// `go generate ./internal/grpcapi/pb` (needs protoc; see docs/grpc.md).
package pb

//go:generate bash generate.sh

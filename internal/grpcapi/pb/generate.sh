#!/usr/bin/env bash
# Regenerates the Go code of this package from ../protos/orchestrator_service.proto.
#
# Needs protoc (Debian: apt-get install -y protobuf-compiler, which also brings the well-known
# types under /usr/include) and Go. The two plugins are built at the pinned versions below into a
# temporary directory, so whatever is on PATH does not matter. CI does not run this: the output is
# committed. After a change, run it twice and check that git diff shows nothing new.
set -euo pipefail
cd "$(dirname "$0")"

# Keep these in step with google.golang.org/protobuf and google.golang.org/grpc in go.mod
# (docs/decisions/0011-grpc-and-protobuf.md).
PROTOC_GEN_GO_VERSION=v1.36.12
PROTOC_GEN_GO_GRPC_VERSION=v1.6.2
# The generated files name the protoc that made them; another version gives a one-line diff.
PROTOC_EXPECTED="libprotoc 3.21.12"

GO_PACKAGE="github.com/reprise-dev/reprise/internal/grpcapi/pb;pb" # ;pb: else the name comes from go_package
PROTO=orchestrator_service.proto

if ! command -v protoc >/dev/null; then
  echo "protoc not found: install it (Debian: apt-get install -y protobuf-compiler)" >&2
  exit 1
fi
if [ "$(protoc --version)" != "$PROTOC_EXPECTED" ]; then
  echo "warning: $(protoc --version) is not $PROTOC_EXPECTED; the version comment in the output will change" >&2
fi

bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
GOBIN="$bin" go install "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO_VERSION"
GOBIN="$bin" go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC_VERSION"

# The proto has no package statement and its go_package points into durabletask-go's tree, so the
# M options place it in this package. require_unimplemented_servers=false: our server type must
# implement every RPC itself (a new RPC upstream is then a compile error, not a silent default).
protoc \
  --plugin=protoc-gen-go="$bin/protoc-gen-go" \
  --plugin=protoc-gen-go-grpc="$bin/protoc-gen-go-grpc" \
  -I ../protos \
  --go_out=. --go_opt=paths=source_relative --go_opt="M$PROTO=$GO_PACKAGE" \
  --go-grpc_out=. --go-grpc_opt=paths=source_relative --go-grpc_opt="M$PROTO=$GO_PACKAGE" \
  --go-grpc_opt=require_unimplemented_servers=false \
  "../protos/$PROTO"

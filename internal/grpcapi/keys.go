package grpcapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// KeyMetadata is the gRPC metadata key that carries an access key, as the x-functions-key header
// carries one to the HTTP API. `authorization: Bearer <key>` is accepted too: it is what gRPC's
// per-RPC token credentials send.
const KeyMetadata = "x-functions-key"

// Keys are the access keys a server requires: any one of them opens every RPC.
type Keys struct {
	Master, System string
}

// keyHelp says how to authenticate; every refusal ends with it.
const keyHelp = "send the master or system key of the task hub as gRPC metadata " + KeyMetadata +
	": <key> (or authorization: Bearer <key>) with every call; `reprise keys` prints the keys a host generated " +
	"(unless REPRISE_MASTER_KEY or REPRISE_SYSTEM_KEY sets them)"

// KeyOptions return the server options that require one of the keys in the metadata of every
// call, Hello included: the SDKs send the same metadata with every call, so Hello checks the key
// at connect time, and an open Hello would tell anyone the task hub names (its NotFound lists
// them). Keys are hashed and compared in constant time, so neither they nor their lengths leak
// through timing. No non-empty key is an error: a server that means to require a key must not
// silently open.
func KeyOptions(k Keys) ([]grpc.ServerOption, error) {
	var sums [][sha256.Size]byte
	for _, key := range []string{k.Master, k.System} {
		if key != "" {
			sums = append(sums, sha256.Sum256([]byte(key)))
		}
	}
	if len(sums) == 0 {
		return nil, errors.New("grpcapi: no key to require: give the master key, the system key or both")
	}
	check := func(ctx context.Context) error {
		key, err := callKey(ctx)
		if err != nil {
			return err
		}
		h := sha256.Sum256([]byte(key))
		ok := 0
		for _, s := range sums {
			ok |= subtle.ConstantTimeCompare(h[:], s[:])
		}
		if ok != 1 {
			return status.Error(codes.Unauthenticated, "the key the call carries is not a key of this server: "+keyHelp)
		}
		return nil
	}
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if err := check(ctx); err != nil {
				return nil, err
			}
			return h(ctx, req)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if err := check(ss.Context()); err != nil {
				return err
			}
			return h(srv, ss)
		}),
	}, nil
}

// callKey returns the key a call carries: x-functions-key, else an authorization Bearer token.
func callKey(ctx context.Context) (string, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get(KeyMetadata); len(v) > 0 && v[0] != "" {
		return v[0], nil
	}
	if v := md.Get("authorization"); len(v) > 0 && v[0] != "" {
		scheme, token, ok := strings.Cut(v[0], " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
			return "", status.Error(codes.Unauthenticated, "the authorization metadata is not \"Bearer <key>\": "+keyHelp)
		}
		return strings.TrimSpace(token), nil
	}
	return "", status.Error(codes.Unauthenticated, "this server requires a key and the call carries none: "+keyHelp)
}

package grpcapi

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/reprise-dev/reprise/internal/grpcapi/pb"
)

// ShutdownOptions return the server options that end the long calls in flight when shutdown
// ends: the waits (WaitForInstanceStart, WaitForInstanceCompletion) and the streams would
// otherwise hold a graceful stop for as long as their clients' deadlines. Other unary calls are
// left to finish within the stop's grace period. Such a call answers UNAVAILABLE, which the
// SDKs treat as "try again", against this server once it is back or another one on the store.
func ShutdownOptions(shutdown context.Context) []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(unaryShutdown(shutdown)),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			ctx, cancel := context.WithCancel(ss.Context())
			defer cancel()
			defer context.AfterFunc(shutdown, cancel)()
			return shuttingDown(shutdown, h(srv, &stream{ServerStream: ss, ctx: ctx}))
		}),
	}
}

// unaryShutdown ends a wait in flight when shutdown ends.
func unaryShutdown(shutdown context.Context) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if !waits[info.FullMethod] {
			return h(ctx, req)
		}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		defer context.AfterFunc(shutdown, cancel)()
		res, err := h(ctx, req)
		return res, shuttingDown(shutdown, err)
	}
}

// waits are the unary calls that last as long as their clients ask.
var waits = map[string]bool{
	pb.TaskHubSidecarService_WaitForInstanceStart_FullMethodName:      true,
	pb.TaskHubSidecarService_WaitForInstanceCompletion_FullMethodName: true,
}

// shuttingDown replaces the status of a call that shutdown cancelled.
func shuttingDown(shutdown context.Context, err error) error {
	if err != nil && shutdown.Err() != nil && status.Code(err) == codes.Canceled {
		return status.Error(codes.Unavailable, "the server is shutting down; retry the call")
	}
	return err
}

// stream is a server stream with the context of ShutdownOptions.
type stream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *stream) Context() context.Context { return s.ctx }

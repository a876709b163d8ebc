// Package grpcapi serves the Durable Task gRPC protocol (TaskHubSidecarService), which the Durable
// Task SDKs for JavaScript, Python, Java, .NET and Go speak to their backend.
//
// The control RPCs (start, get, wait, raise, terminate, suspend, resume, restart, rewind, query,
// list, purge, stream history) run on the task hub's control plane (internal/control), as the
// Client, the management API and the dashboard do. The worker RPCs (GetWorkItems and the
// completions) make each worker stream an engine of its own (internal/engine with a Remote, see
// worker.go): the engine claims, commits and renews leases, the worker runs the code. Durable
// entities (entities.go) are served both ways: the client RPCs on the control plane, and entity
// batches as work items of the same streams.
// docs/grpc.md says what is served.
package grpcapi

import (
	"context"
	"fmt"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/reprise-dev/reprise/internal/control"
	"github.com/reprise-dev/reprise/internal/grpcapi/pb"
)

// Hub is a task hub the service serves: its name, its control plane, and where its workers'
// streams claim work (nil serves the control RPCs only).
type Hub struct {
	Name  string
	Plane *control.Plane
	Work  *Work
}

// Service implements pb.TaskHubSidecarServiceServer. It embeds no generated default on purpose:
// when a regenerated proto adds an RPC, this stops compiling until the RPC gets an answer here.
type Service struct {
	hubs       []Hub // the first is the default, for calls without taskhub metadata
	dispatched dispatched
}

var _ pb.TaskHubSidecarServiceServer = (*Service)(nil)

// NewService returns the service for the hubs (at least one; the first serves the calls that
// name no hub); register it with pb.RegisterTaskHubSidecarServiceServer.
func NewService(hubs ...Hub) *Service {
	s := &Service{hubs: hubs}
	s.dispatched.init()
	return s
}

// plane returns the control plane of the hub the call names in its taskhub metadata (the SDKs
// send it), or of the default hub. A hub this server does not serve is refused: serving the call
// on another hub would show or change the wrong instances.
func (s *Service) plane(ctx context.Context) (*control.Plane, error) {
	h, err := s.hub(ctx)
	if err != nil {
		return nil, err
	}
	return h.Plane, nil
}

// hub returns the hub the call names (see plane).
func (s *Service) hub(ctx context.Context) (*Hub, error) {
	if len(s.hubs) == 0 {
		return nil, status.Error(codes.FailedPrecondition, "this server serves no task hub")
	}
	md, _ := metadata.FromIncomingContext(ctx)
	names := md.Get("taskhub")
	if len(names) == 0 || names[0] == "" {
		return &s.hubs[0], nil
	}
	// Task hub names are case-insensitive in Durable Functions.
	for i, h := range s.hubs {
		if strings.EqualFold(h.Name, names[0]) {
			return &s.hubs[i], nil
		}
	}
	served := make([]string, len(s.hubs))
	for i, h := range s.hubs {
		served[i] = fmt.Sprintf("%q", h.Name)
	}
	return nil, status.Errorf(codes.NotFound,
		"task hub %q is not served here: this server serves task hub %s; set the client's task hub to it or start a server for %q",
		names[0], strings.Join(served, ", "), names[0])
}

// notServed is the answer of every RPC that Reprise does not serve yet.
func notServed(rpc string) error {
	return status.Errorf(codes.Unimplemented,
		"TaskHubSidecarService/%s is not served yet by Reprise; see docs/grpc.md", rpc)
}

// Hello is the SDKs' connection check: an empty answer means the backend is there and serves
// the task hub the client names.
func (s *Service) Hello(ctx context.Context, _ *emptypb.Empty) (*emptypb.Empty, error) {
	if _, err := s.plane(ctx); err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

// CreateTaskHub answers that the hub exists: a store creates its tables when it is opened, and a
// hub is a name in them. Recreating (deleting every instance first) is refused, as DeleteTaskHub.
func (s *Service) CreateTaskHub(ctx context.Context, r *pb.CreateTaskHubRequest) (*pb.CreateTaskHubResponse, error) {
	h, err := s.hub(ctx)
	if err != nil {
		return nil, err
	}
	if r.RecreateIfExists {
		return nil, status.Errorf(codes.FailedPrecondition,
			"task hub %q exists and Reprise does not delete a task hub over gRPC: purge its instances (PurgeInstances by filter) instead", h.Name)
	}
	return &pb.CreateTaskHubResponse{}, nil
}

// DeleteTaskHub is refused: deleting every instance of a hub, running ones included, is not an
// SDK's call to make on a shared server.
func (s *Service) DeleteTaskHub(ctx context.Context, _ *pb.DeleteTaskHubRequest) (*pb.DeleteTaskHubResponse, error) {
	h, err := s.hub(ctx)
	if err != nil {
		return nil, err
	}
	return nil, status.Errorf(codes.FailedPrecondition,
		"Reprise does not delete task hub %q over gRPC: purge its finished instances (PurgeInstances by filter), or delete the store", h.Name)
}

func (*Service) SkipGracefulOrchestrationTerminations(context.Context, *pb.SkipGracefulOrchestrationTerminationsRequest) (*pb.SkipGracefulOrchestrationTerminationsResponse, error) {
	return nil, notServed("SkipGracefulOrchestrationTerminations")
}

// MaxMessageBytes bounds the messages the server takes and sends. gRPC's default of 4 MiB is
// too small for a turn with large payloads or a long history; the Durable Task SDKs send and
// take much larger messages.
const MaxMessageBytes = 64 << 20

// ServerOptions are the options a server of the service needs (message size limits).
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.MaxRecvMsgSize(MaxMessageBytes), grpc.MaxSendMsgSize(MaxMessageBytes)}
}

// Package grpcapi serves the Durable Task gRPC protocol (TaskHubSidecarService), which the Durable
// Task SDKs for JavaScript, Python, Java, .NET and Go speak to their backend.
//
// So far only Hello is served; every other RPC answers UNIMPLEMENTED with a message that names it,
// so an SDK fails at once with a reason instead of waiting. docs/grpc.md has the plan.
package grpcapi

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/reprise-dev/reprise/internal/grpcapi/pb"
)

// Service implements pb.TaskHubSidecarServiceServer. It embeds no generated default on purpose:
// when a regenerated proto adds an RPC, this stops compiling until the RPC gets an answer here.
type Service struct{}

var _ pb.TaskHubSidecarServiceServer = (*Service)(nil)

// NewService returns the service; register it with pb.RegisterTaskHubSidecarServiceServer.
func NewService() *Service { return &Service{} }

// notServed is the answer of every RPC that Reprise does not serve yet.
func notServed(rpc string) error {
	return status.Errorf(codes.Unimplemented,
		"TaskHubSidecarService/%s is not served yet by Reprise; see docs/grpc.md", rpc)
}

// entitiesNotServed is the answer of the entity RPCs, which wait for Durable entities in the engine.
func entitiesNotServed(rpc string) error {
	return status.Errorf(codes.Unimplemented,
		"TaskHubSidecarService/%s is not served yet by Reprise: Durable entities are not supported yet; see docs/grpc.md", rpc)
}

// Hello is the SDKs' connection check: an empty answer means the backend is there.
func (*Service) Hello(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}

// Control plane.

func (*Service) StartInstance(context.Context, *pb.CreateInstanceRequest) (*pb.CreateInstanceResponse, error) {
	return nil, notServed("StartInstance")
}

func (*Service) GetInstance(context.Context, *pb.GetInstanceRequest) (*pb.GetInstanceResponse, error) {
	return nil, notServed("GetInstance")
}

func (*Service) RewindInstance(context.Context, *pb.RewindInstanceRequest) (*pb.RewindInstanceResponse, error) {
	return nil, notServed("RewindInstance")
}

func (*Service) RestartInstance(context.Context, *pb.RestartInstanceRequest) (*pb.RestartInstanceResponse, error) {
	return nil, notServed("RestartInstance")
}

func (*Service) WaitForInstanceStart(context.Context, *pb.GetInstanceRequest) (*pb.GetInstanceResponse, error) {
	return nil, notServed("WaitForInstanceStart")
}

func (*Service) WaitForInstanceCompletion(context.Context, *pb.GetInstanceRequest) (*pb.GetInstanceResponse, error) {
	return nil, notServed("WaitForInstanceCompletion")
}

func (*Service) RaiseEvent(context.Context, *pb.RaiseEventRequest) (*pb.RaiseEventResponse, error) {
	return nil, notServed("RaiseEvent")
}

func (*Service) TerminateInstance(context.Context, *pb.TerminateRequest) (*pb.TerminateResponse, error) {
	return nil, notServed("TerminateInstance")
}

func (*Service) SuspendInstance(context.Context, *pb.SuspendRequest) (*pb.SuspendResponse, error) {
	return nil, notServed("SuspendInstance")
}

func (*Service) ResumeInstance(context.Context, *pb.ResumeRequest) (*pb.ResumeResponse, error) {
	return nil, notServed("ResumeInstance")
}

func (*Service) QueryInstances(context.Context, *pb.QueryInstancesRequest) (*pb.QueryInstancesResponse, error) {
	return nil, notServed("QueryInstances")
}

func (*Service) ListInstanceIds(context.Context, *pb.ListInstanceIdsRequest) (*pb.ListInstanceIdsResponse, error) {
	return nil, notServed("ListInstanceIds")
}

func (*Service) PurgeInstances(context.Context, *pb.PurgeInstancesRequest) (*pb.PurgeInstancesResponse, error) {
	return nil, notServed("PurgeInstances")
}

func (*Service) StreamInstanceHistory(*pb.StreamInstanceHistoryRequest, grpc.ServerStreamingServer[pb.HistoryChunk]) error {
	return notServed("StreamInstanceHistory")
}

func (*Service) CreateTaskHub(context.Context, *pb.CreateTaskHubRequest) (*pb.CreateTaskHubResponse, error) {
	return nil, notServed("CreateTaskHub")
}

func (*Service) DeleteTaskHub(context.Context, *pb.DeleteTaskHubRequest) (*pb.DeleteTaskHubResponse, error) {
	return nil, notServed("DeleteTaskHub")
}

func (*Service) SkipGracefulOrchestrationTerminations(context.Context, *pb.SkipGracefulOrchestrationTerminationsRequest) (*pb.SkipGracefulOrchestrationTerminationsResponse, error) {
	return nil, notServed("SkipGracefulOrchestrationTerminations")
}

// Workers.

func (*Service) GetWorkItems(*pb.GetWorkItemsRequest, grpc.ServerStreamingServer[pb.WorkItem]) error {
	return notServed("GetWorkItems")
}

func (*Service) CompleteActivityTask(context.Context, *pb.ActivityResponse) (*pb.CompleteTaskResponse, error) {
	return nil, notServed("CompleteActivityTask")
}

func (*Service) CompleteOrchestratorTask(context.Context, *pb.OrchestratorResponse) (*pb.CompleteTaskResponse, error) {
	return nil, notServed("CompleteOrchestratorTask")
}

func (*Service) AbandonTaskActivityWorkItem(context.Context, *pb.AbandonActivityTaskRequest) (*pb.AbandonActivityTaskResponse, error) {
	return nil, notServed("AbandonTaskActivityWorkItem")
}

func (*Service) AbandonTaskOrchestratorWorkItem(context.Context, *pb.AbandonOrchestrationTaskRequest) (*pb.AbandonOrchestrationTaskResponse, error) {
	return nil, notServed("AbandonTaskOrchestratorWorkItem")
}

// Entities.

func (*Service) CompleteEntityTask(context.Context, *pb.EntityBatchResult) (*pb.CompleteTaskResponse, error) {
	return nil, entitiesNotServed("CompleteEntityTask")
}

func (*Service) AbandonTaskEntityWorkItem(context.Context, *pb.AbandonEntityTaskRequest) (*pb.AbandonEntityTaskResponse, error) {
	return nil, entitiesNotServed("AbandonTaskEntityWorkItem")
}

func (*Service) SignalEntity(context.Context, *pb.SignalEntityRequest) (*pb.SignalEntityResponse, error) {
	return nil, entitiesNotServed("SignalEntity")
}

func (*Service) GetEntity(context.Context, *pb.GetEntityRequest) (*pb.GetEntityResponse, error) {
	return nil, entitiesNotServed("GetEntity")
}

func (*Service) QueryEntities(context.Context, *pb.QueryEntitiesRequest) (*pb.QueryEntitiesResponse, error) {
	return nil, entitiesNotServed("QueryEntities")
}

func (*Service) CleanEntityStorage(context.Context, *pb.CleanEntityStorageRequest) (*pb.CleanEntityStorageResponse, error) {
	return nil, entitiesNotServed("CleanEntityStorage")
}

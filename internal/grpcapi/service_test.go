package grpcapi

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/reprise-dev/reprise/internal/control"
	"github.com/reprise-dev/reprise/internal/grpcapi/pb"
	"github.com/reprise-dev/reprise/store/sqlite"
)

// hangGuard bounds each call so that an RPC that hangs fails the test with a reason instead of
// stalling the run; no call is expected to come near it.
const hangGuard = 30 * time.Second

// serve starts a real gRPC server (with opts) with the service on a loopback port, on a task hub "default" in
// a SQLite store of its own, and returns a connection to it.
func serve(t *testing.T, opts ...grpc.ServerOption) *grpc.ClientConn {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "hub.db"), sqlite.Options{Hub: "default"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return serveService(t, NewService(Hub{Name: "default", Plane: control.New(st, control.Options{Hub: "default"})}), opts...)
}

// serveService starts a real gRPC server with svc on a loopback port and returns a connection to it.
func serveService(t *testing.T, svc *Service, opts ...grpc.ServerOption) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(opts...)
	pb.RegisterTaskHubSidecarServiceServer(gs, svc)
	served := make(chan error, 1)
	go func() { served <- gs.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		gs.Stop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return conn
}

func callContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	t.Cleanup(cancel)
	// The metadata every SDK sends; it must be accepted.
	return metadata.AppendToOutgoingContext(ctx, "taskhub", "default", "workerid", "test-worker", "x-user-agent", "reprise-test")
}

func TestHelloAnswers(t *testing.T) {
	client := pb.NewTaskHubSidecarServiceClient(serve(t))
	if _, err := client.Hello(callContext(t), &emptypb.Empty{}); err != nil {
		t.Fatalf("Hello: %v, want an empty answer", err)
	}
}

// wantNotServed checks that err is UNIMPLEMENTED with our message naming rpc.
// A call that ran into the guard's deadline hangs, whatever it answered then.
func wantNotServed(t *testing.T, ctx context.Context, rpc string, err error) {
	t.Helper()
	st, ok := status.FromError(err)
	switch {
	case ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || st.Code() == codes.DeadlineExceeded:
		t.Errorf("%s hangs: no answer within %s (got %v)", rpc, hangGuard, err)
	case err == nil:
		t.Errorf("%s: no error, want UNIMPLEMENTED", rpc)
	case !ok || st.Code() != codes.Unimplemented:
		t.Errorf("%s: %v, want UNIMPLEMENTED", rpc, err)
	case st.Message() != "TaskHubSidecarService/"+rpc+" is not served yet by Reprise; see docs/grpc.md":
		t.Errorf("%s: message %q, want one that names the RPC and points to docs/grpc.md", rpc, st.Message())
	}
}

func TestUnservedRPCsAnswerUnimplemented(t *testing.T) {
	client := pb.NewTaskHubSidecarServiceClient(serve(t))

	ctx := callContext(t)
	_, err := client.SkipGracefulOrchestrationTerminations(ctx, &pb.SkipGracefulOrchestrationTerminationsRequest{})
	wantNotServed(t, ctx, "SkipGracefulOrchestrationTerminations", err)
}

// served are the RPCs that answer; the rest refuse with UNIMPLEMENTED.
var served = map[string]bool{"Hello": true, "StartInstance": true, "GetInstance": true, "RewindInstance": true,
	"RestartInstance": true, "WaitForInstanceStart": true, "WaitForInstanceCompletion": true, "RaiseEvent": true,
	"TerminateInstance": true, "SuspendInstance": true, "ResumeInstance": true, "QueryInstances": true,
	"ListInstanceIds": true, "PurgeInstances": true, "StreamInstanceHistory": true,
	"GetWorkItems": true, "CompleteOrchestratorTask": true, "CompleteActivityTask": true,
	"AbandonTaskOrchestratorWorkItem": true, "AbandonTaskActivityWorkItem": true,
	"CreateTaskHub": true, "DeleteTaskHub": true,
	"SignalEntity": true, "GetEntity": true, "QueryEntities": true, "CleanEntityStorage": true,
	"CompleteEntityTask": true, "AbandonTaskEntityWorkItem": true}

// TestEveryRPCAnswers calls every method of the service descriptor (not a hand-kept list, so an
// RPC added to the proto is covered) with an empty message and wants each to answer at once:
// the served ones with an answer or a status other than UNIMPLEMENTED, the rest with
// UNIMPLEMENTED and a clear message.
func TestEveryRPCAnswers(t *testing.T) {
	conn := serve(t)
	sd := pb.File_orchestrator_service_proto.Services().ByName("TaskHubSidecarService")
	if sd == nil {
		t.Fatal("TaskHubSidecarService is not in the generated descriptor")
	}
	methods := sd.Methods()
	if methods.Len() != 29 {
		t.Errorf("the proto has %d RPCs, want the 29 of docs/grpc.md (update the doc and this test)", methods.Len())
	}
	for i := range methods.Len() {
		m := methods.Get(i)
		rpc := string(m.Name())
		t.Run(rpc, func(t *testing.T) {
			ctx := callContext(t)
			stream, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: m.IsStreamingServer()},
				"/TaskHubSidecarService/"+rpc)
			if err == nil {
				err = stream.SendMsg(dynamicpb.NewMessage(m.Input()))
			}
			if err == nil {
				err = stream.CloseSend()
			}
			if err == nil {
				err = stream.RecvMsg(dynamicpb.NewMessage(m.Output()))
			}
			if rpc == "Hello" {
				if err != nil || ctx.Err() != nil {
					t.Errorf("Hello: %v, want an empty answer", err)
				}
				return
			}
			if served[rpc] {
				if c := status.Code(err); ctx.Err() != nil || c == codes.DeadlineExceeded || c == codes.Unimplemented {
					t.Errorf("%s: %v, want an answer or a status that is not UNIMPLEMENTED, at once", rpc, err)
				}
				return
			}
			wantNotServed(t, ctx, rpc, err)
		})
	}
}

// TestTaskHubRPCs: CreateTaskHub answers that the hub is there; recreating or deleting a hub
// over gRPC is refused with a reason.
func TestTaskHubRPCs(t *testing.T) {
	client := pb.NewTaskHubSidecarServiceClient(serve(t))
	if _, err := client.CreateTaskHub(callContext(t), &pb.CreateTaskHubRequest{}); err != nil {
		t.Errorf("CreateTaskHub: %v", err)
	}
	_, err := client.CreateTaskHub(callContext(t), &pb.CreateTaskHubRequest{RecreateIfExists: true})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(status.Convert(err).Message(), "purge") {
		t.Errorf("CreateTaskHub recreateIfExists: %v, want FAILED_PRECONDITION saying to purge", err)
	}
	_, err = client.DeleteTaskHub(callContext(t), &pb.DeleteTaskHubRequest{})
	if status.Code(err) != codes.FailedPrecondition {
		t.Errorf("DeleteTaskHub: %v, want FAILED_PRECONDITION", err)
	}
}

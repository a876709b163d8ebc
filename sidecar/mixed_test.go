package sidecar

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/reprise-dev/reprise"
	"github.com/reprise-dev/reprise/internal/grpcapi/pb"
	"github.com/reprise-dev/reprise/store"
)

// TestGoOrchestratorCallsRemoteActivity runs a Go orchestrator of an App that calls an activity
// only a worker stream has: the stream (which sends no filters, as the SDKs do by default) gets
// the activity and never the Go orchestrator's turns. The SDK workers do the same in
// TestInteropDurableTaskJSMixed (cmd/reprise); this drives the protocol itself.
func TestGoOrchestratorCallsRemoteActivity(t *testing.T) {
	goSeq := reprise.NewOrchestrator("GoSeq", func(ctx *reprise.OrchestrationContext, in string) (string, error) {
		return reprise.CallActivity[string](ctx, "remote-only", in+"!").Await()
	})
	app := startApp(t, goSeq)
	srv := listen(t, app, Options{})
	ctx, client, stream := openStream(t, srv)
	id, err := app.Client().StartNew(ctx, "GoSeq", "hi")
	if err != nil {
		t.Fatal(err)
	}
	var item *pb.WorkItem
	for item == nil || item.GetHealthPing() != nil {
		if item, err = stream.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	act := item.GetActivityRequest()
	if act == nil || act.Name != "remote-only" || act.Input.GetValue() != `"hi!"` {
		t.Fatalf("the worker got %v, want the activity remote-only and never the Go orchestrator", item)
	}
	if _, err := client.CompleteActivityTask(ctx, &pb.ActivityResponse{InstanceId: id, TaskId: act.TaskId,
		Result: wrapperspb.String(`"from the worker"`), CompletionToken: item.CompletionToken}); err != nil {
		t.Fatal(err)
	}
	inst, err := app.Client().WaitForCompletion(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var out string
	if err := json.Unmarshal(inst.Output, &out); err != nil || inst.Status != reprise.StatusCompleted || out != "from the worker" {
		t.Errorf("instance %+v (%v), want Completed with the worker's result", inst, err)
	}
}

// TestShutdownGivesStreamsWorkBack shuts the server down while a worker stream holds a turn: the
// stream ends with UNAVAILABLE, and the turn's lease is released at once (another claimer gets
// it now, not when the lease runs out).
func TestShutdownGivesStreamsWorkBack(t *testing.T) {
	app := startApp(t)
	srv, err := Listen(context.Background(), app, Options{Addr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, client, stream := openStream(t, srv)
	if _, err := client.StartInstance(ctx, &pb.CreateInstanceRequest{Name: "Remote", InstanceId: "held"}); err != nil {
		t.Fatal(err)
	}
	for {
		item, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if item.GetOrchestratorRequest() != nil {
			break
		}
	}
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for {
		_, err := stream.Recv()
		if err == nil {
			continue
		}
		if status.Code(err) != codes.Unavailable {
			t.Errorf("the stream at shutdown ended with %v, want UNAVAILABLE", err)
		}
		break
	}
	st, err := app.Store()
	if err != nil {
		t.Fatal(err)
	}
	work, err := st.ClaimOrchestrations(ctx, "next", store.AllNamesExcept(), 10, time.Minute)
	if err != nil || len(work) != 1 || work[0].Instance.ID != "held" {
		t.Fatalf("a claim right after shutdown: %v %v, want the turn the stream held", work, err)
	}
}

// openStream connects to srv and opens a work-item stream without filters (as the SDKs do by
// default), open on the server once it returns; everything ends with t.
func openStream(t *testing.T, srv *Server) (context.Context, pb.TaskHubSidecarServiceClient, grpc.ServerStreamingClient[pb.WorkItem]) {
	t.Helper()
	conn, err := grpc.NewClient(srv.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	client := pb.NewTaskHubSidecarServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	stream, err := client.GetWorkItems(ctx, &pb.GetWorkItemsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Header(); err != nil {
		t.Fatal(err)
	}
	return ctx, client, stream
}

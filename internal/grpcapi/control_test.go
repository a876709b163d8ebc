package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/reprise-dev/reprise"
	"github.com/reprise-dev/reprise/internal/control"
	"github.com/reprise-dev/reprise/internal/grpcapi/pb"
	"github.com/reprise-dev/reprise/internal/pgtest"
	"github.com/reprise-dev/reprise/store"
	"github.com/reprise-dev/reprise/store/postgres"
	"github.com/reprise-dev/reprise/store/sqlite"
)

// hub is a running task hub for the control tests: an App that runs the orchestrators below on a
// store, and the gRPC service on the same store.
type hub struct {
	st     store.Store
	client pb.TaskHubSidecarServiceClient
}

// The orchestrators the tests start over gRPC; the App beside the service runs them, as a
// worker would.
func definitions(flaky *atomic.Int32) []reprise.Definition {
	echo := reprise.NewOrchestrator("Echo", func(ctx *reprise.OrchestrationContext, in any) (any, error) { return in, nil })
	wait := reprise.NewOrchestrator("Wait", func(ctx *reprise.OrchestrationContext, _ reprise.None) (string, error) {
		return reprise.WaitForEvent[string](ctx, "go", 0).Await()
	})
	// FailOnce fails its first run: a rewind runs the failed activity again, which then succeeds.
	step := reprise.NewActivity("FlakyStep", func(ctx context.Context, _ reprise.None) (string, error) {
		if flaky.Add(1) == 1 {
			return "", errors.New("first attempt fails")
		}
		return "recovered", nil
	})
	failOnce := reprise.NewOrchestrator("FailOnce", func(ctx *reprise.OrchestrationContext, _ reprise.None) (string, error) {
		return step.Call(ctx, reprise.None{}).Await()
	})
	greet := reprise.NewActivity("Greet", func(ctx context.Context, name string) (string, error) { return "Hello " + name, nil })
	story := reprise.NewOrchestrator("Story", func(ctx *reprise.OrchestrationContext, name string) (string, error) {
		g, err := greet.Call(ctx, name).Await()
		if err != nil {
			return "", err
		}
		if _, err := ctx.CreateTimer(time.Millisecond).Await(); err != nil {
			return "", err
		}
		by, err := reprise.WaitForEvent[string](ctx, "go", 0).Await()
		return g + " from " + by, err
	})
	return []reprise.Definition{echo, wait, step, failOnce, greet, story}
}

func newHub(t *testing.T, st store.Store) *hub {
	t.Helper()
	var flaky atomic.Int32
	app := reprise.NewApp(reprise.WithStore(st), reprise.WithLogger(slog.New(slog.DiscardHandler)))
	app.Register(definitions(&flaky)...)
	if err := app.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := app.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	conn := serveService(t, NewService(Hub{Name: "default", Plane: control.New(st, control.Options{Hub: "default"})}))
	return &hub{st: st, client: pb.NewTaskHubSidecarServiceClient(conn)}
}

func sqliteHub(t *testing.T) *hub {
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "hub.db"), sqlite.Options{Hub: "default"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return newHub(t, st)
}

// waitStatus waits for the instance to reach want, woken by the store's change signal.
func (h *hub) waitStatus(t *testing.T, id string, want store.Status) {
	t.Helper()
	ctx := callContext(t)
	for {
		changed, stop := h.st.WatchInstance(id)
		inst, err := h.st.GetInstance(ctx, id)
		if err == nil && inst.Status == want {
			stop()
			return
		}
		select {
		case <-changed:
		case <-time.After(time.Second): // another writer's change sends no signal; read again
		case <-ctx.Done():
			stop()
			t.Fatalf("instance %q: status %v, want %v", id, inst.Status, want)
		}
		stop()
	}
}

func (h *hub) start(t *testing.T, name, id, input string) string {
	t.Helper()
	r := &pb.CreateInstanceRequest{Name: name, InstanceId: id}
	if input != "" {
		r.Input = wrapperspb.String(input)
	}
	res, err := h.client.StartInstance(callContext(t), r)
	if err != nil {
		t.Fatalf("StartInstance %s %q: %v", name, id, err)
	}
	return res.InstanceId
}

func (h *hub) complete(t *testing.T, id string) *pb.OrchestrationState {
	t.Helper()
	res, err := h.client.WaitForInstanceCompletion(callContext(t), &pb.GetInstanceRequest{InstanceId: id, GetInputsAndOutputs: true})
	if err != nil || !res.Exists {
		t.Fatalf("WaitForInstanceCompletion %q: %v, exists %v", id, err, res.GetExists())
	}
	return res.OrchestrationState
}

// wantCode checks the status code of err, and that its message is not empty.
func wantCode(t *testing.T, what string, err error, want codes.Code) {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != want || (want != codes.OK && st.Message() == "") {
		t.Errorf("%s: %v, want %v with a message", what, err, want)
	}
}

func TestStartGetAndWait(t *testing.T) {
	h := sqliteHub(t)
	ctx := callContext(t)

	id := h.start(t, "Echo", "echo-1", `{"city":"Tokyo"}`)
	if id != "echo-1" {
		t.Errorf("StartInstance: ID %q, want echo-1", id)
	}
	s := h.complete(t, id)
	if s.OrchestrationStatus != pb.OrchestrationStatus_ORCHESTRATION_STATUS_COMPLETED || s.Name != "Echo" ||
		s.GetOutput().GetValue() != `{"city":"Tokyo"}` || s.GetInput().GetValue() != `{"city":"Tokyo"}` {
		t.Errorf("completed state: %v", s)
	}
	if s.CreatedTimestamp == nil || s.CompletedTimestamp == nil || s.LastUpdatedTimestamp == nil ||
		s.CompletedTimestamp.AsTime().Before(s.CreatedTimestamp.AsTime()) || s.GetExecutionId().GetValue() == "" {
		t.Errorf("timestamps and execution ID: %v", s)
	}

	res, err := h.client.GetInstance(ctx, &pb.GetInstanceRequest{InstanceId: id})
	if err != nil || !res.Exists || res.OrchestrationState.Input != nil || res.OrchestrationState.Output != nil ||
		res.OrchestrationState.OrchestrationStatus != pb.OrchestrationStatus_ORCHESTRATION_STATUS_COMPLETED {
		t.Errorf("GetInstance without payloads: %v, %v", res, err)
	}

	// No ID: a generated one. No input: null.
	gen := h.start(t, "Echo", "", "")
	if len(gen) != 32 {
		t.Errorf("generated ID %q, want 32 hex characters", gen)
	}
	if s := h.complete(t, gen); s.GetOutput().GetValue() != "null" {
		t.Errorf("output of an instance without input: %v", s.Output)
	}

	// What the JS SDK sends for "no input, start now": an empty input and the epoch.
	js, err := h.client.StartInstance(ctx, &pb.CreateInstanceRequest{Name: "Echo", Input: wrapperspb.String(""),
		ScheduledStartTimestamp: timestamppb.New(time.Unix(0, 0))})
	if err != nil {
		t.Fatalf("StartInstance as the JS SDK: %v", err)
	}
	if s := h.complete(t, js.InstanceId); s.GetOutput().GetValue() != "null" {
		t.Errorf("output of an instance with an empty input: %v", s.Output)
	}

	// A scheduled start stays Pending; a wait for its start ends with the call's deadline.
	sched, err := h.client.StartInstance(ctx, &pb.CreateInstanceRequest{Name: "Echo", InstanceId: "scheduled",
		ScheduledStartTimestamp: timestamppb.New(time.Now().Add(time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	res, err = h.client.GetInstance(ctx, &pb.GetInstanceRequest{InstanceId: sched.InstanceId})
	if err != nil || res.OrchestrationState.OrchestrationStatus != pb.OrchestrationStatus_ORCHESTRATION_STATUS_PENDING {
		t.Errorf("scheduled instance: %v, %v, want PENDING", res, err)
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err = h.client.WaitForInstanceStart(short, &pb.GetInstanceRequest{InstanceId: "scheduled"})
	cancel()
	wantCode(t, "WaitForInstanceStart of a scheduled instance", err, codes.DeadlineExceeded)

	running := h.start(t, "Wait", "waiting", "")
	ws, err := h.client.WaitForInstanceStart(ctx, &pb.GetInstanceRequest{InstanceId: running})
	if err != nil || ws.OrchestrationState.OrchestrationStatus != pb.OrchestrationStatus_ORCHESTRATION_STATUS_RUNNING {
		t.Errorf("WaitForInstanceStart: %v, %v, want RUNNING", ws, err)
	}

	// Unknown instances: exists=false, as the SDKs expect.
	for _, rpc := range []string{"GetInstance", "WaitForInstanceStart", "WaitForInstanceCompletion"} {
		var res *pb.GetInstanceResponse
		r := &pb.GetInstanceRequest{InstanceId: "no-such-instance"}
		switch rpc {
		case "GetInstance":
			res, err = h.client.GetInstance(ctx, r)
		case "WaitForInstanceStart":
			res, err = h.client.WaitForInstanceStart(ctx, r)
		default:
			res, err = h.client.WaitForInstanceCompletion(ctx, r)
		}
		if err != nil || res.Exists {
			t.Errorf("%s of an unknown instance: %v, %v, want exists=false", rpc, res, err)
		}
		r.InstanceId = "bad\x00id"
		switch rpc {
		case "GetInstance":
			_, err = h.client.GetInstance(ctx, r)
		case "WaitForInstanceStart":
			_, err = h.client.WaitForInstanceStart(ctx, r)
		default:
			_, err = h.client.WaitForInstanceCompletion(ctx, r)
		}
		wantCode(t, rpc+" of an ID with NUL", err, codes.InvalidArgument)
	}
}

func TestStartRefusals(t *testing.T) {
	h := sqliteHub(t)
	ctx := callContext(t)
	h.start(t, "Wait", "taken", "")
	h.start(t, "Echo", "done", "")
	h.complete(t, "done")

	all := []pb.OrchestrationStatus{pb.OrchestrationStatus_ORCHESTRATION_STATUS_COMPLETED, pb.OrchestrationStatus_ORCHESTRATION_STATUS_FAILED,
		pb.OrchestrationStatus_ORCHESTRATION_STATUS_TERMINATED, pb.OrchestrationStatus_ORCHESTRATION_STATUS_RUNNING,
		pb.OrchestrationStatus_ORCHESTRATION_STATUS_PENDING, pb.OrchestrationStatus_ORCHESTRATION_STATUS_SUSPENDED}
	for _, c := range []struct {
		what string
		r    *pb.CreateInstanceRequest
		want codes.Code
	}{
		{"an active ID, default policy", &pb.CreateInstanceRequest{Name: "Echo", InstanceId: "taken"}, codes.AlreadyExists},
		{"a finished ID, nothing replaceable", &pb.CreateInstanceRequest{Name: "Echo", InstanceId: "done",
			OrchestrationIdReusePolicy: &pb.OrchestrationIdReusePolicy{}}, codes.AlreadyExists},
		{"a finished ID, default policy", &pb.CreateInstanceRequest{Name: "Echo", InstanceId: "done"}, codes.OK},
		{"an active ID, any replaceable", &pb.CreateInstanceRequest{Name: "Echo", InstanceId: "taken",
			OrchestrationIdReusePolicy: &pb.OrchestrationIdReusePolicy{ReplaceableStatus: all}}, codes.OK},
		{"a policy that cannot be expressed", &pb.CreateInstanceRequest{Name: "Echo", InstanceId: "x",
			OrchestrationIdReusePolicy: &pb.OrchestrationIdReusePolicy{ReplaceableStatus: all[:1]}}, codes.InvalidArgument},
		{"an unknown status in the policy", &pb.CreateInstanceRequest{Name: "Echo", InstanceId: "x",
			OrchestrationIdReusePolicy: &pb.OrchestrationIdReusePolicy{ReplaceableStatus: []pb.OrchestrationStatus{42}}}, codes.InvalidArgument},
		{"an ID with '/'", &pb.CreateInstanceRequest{Name: "Echo", InstanceId: "a/b"}, codes.InvalidArgument},
		{"no name", &pb.CreateInstanceRequest{InstanceId: "nameless"}, codes.InvalidArgument},
		{"input that is not JSON", &pb.CreateInstanceRequest{Name: "Echo", Input: wrapperspb.String("{nope")}, codes.InvalidArgument},
		{"an invalid scheduled start", &pb.CreateInstanceRequest{Name: "Echo", ScheduledStartTimestamp: &timestamppb.Timestamp{Nanos: -1}}, codes.InvalidArgument},
	} {
		_, err := h.client.StartInstance(ctx, c.r)
		wantCode(t, "StartInstance with "+c.what, err, c.want)
	}
}

func TestCommands(t *testing.T) {
	h := sqliteHub(t)
	ctx := callContext(t)

	// Raise: the waiting instance completes with the event's data.
	id := h.start(t, "Wait", "raise-me", "")
	if _, err := h.client.RaiseEvent(ctx, &pb.RaiseEventRequest{InstanceId: id, Name: "go", Input: wrapperspb.String(`"hi"`)}); err != nil {
		t.Fatalf("RaiseEvent: %v", err)
	}
	if s := h.complete(t, id); s.GetOutput().GetValue() != `"hi"` {
		t.Errorf("output after the event: %v", s.Output)
	}

	// Suspend and resume.
	sus := h.start(t, "Wait", "suspend-me", "")
	h.waitStatus(t, sus, store.StatusRunning)
	if _, err := h.client.SuspendInstance(ctx, &pb.SuspendRequest{InstanceId: sus, Reason: wrapperspb.String("pause")}); err != nil {
		t.Fatal(err)
	}
	h.waitStatus(t, sus, store.StatusSuspended)
	if _, err := h.client.ResumeInstance(ctx, &pb.ResumeRequest{InstanceId: sus}); err != nil {
		t.Fatal(err)
	}
	h.waitStatus(t, sus, store.StatusRunning)

	// Terminate: the output is the SDK's JSON.
	if _, err := h.client.TerminateInstance(ctx, &pb.TerminateRequest{InstanceId: sus, Output: wrapperspb.String(`"bye"`), Recursive: true}); err != nil {
		t.Fatal(err)
	}
	if s := h.complete(t, sus); s.OrchestrationStatus != pb.OrchestrationStatus_ORCHESTRATION_STATUS_TERMINATED || s.GetOutput().GetValue() != `"bye"` {
		t.Errorf("terminated state: %v", s)
	}

	// Rewind: FailOnce fails, a rewind runs its failed activity again.
	failed := h.start(t, "FailOnce", "fail-once", "")
	if s := h.complete(t, failed); s.OrchestrationStatus != pb.OrchestrationStatus_ORCHESTRATION_STATUS_FAILED ||
		!strings.Contains(s.GetFailureDetails().GetErrorMessage(), "first attempt fails") {
		t.Fatalf("FailOnce: %v, want FAILED with the activity's error", s)
	}
	if _, err := h.client.RewindInstance(ctx, &pb.RewindInstanceRequest{InstanceId: failed, Reason: wrapperspb.String("retry")}); err != nil {
		t.Fatal(err)
	}
	h.waitStatus(t, failed, store.StatusCompleted)

	// Restart: under a new ID, and under the same one.
	finished := "echo-done"
	h.start(t, "Echo", finished, `"again"`)
	h.complete(t, finished)
	res, err := h.client.RestartInstance(ctx, &pb.RestartInstanceRequest{InstanceId: finished, RestartWithNewInstanceId: true})
	if err != nil || res.InstanceId == finished || res.InstanceId == "" {
		t.Fatalf("RestartInstance with a new ID: %v, %v", res, err)
	}
	if s := h.complete(t, res.InstanceId); s.GetOutput().GetValue() != `"again"` {
		t.Errorf("restarted under a new ID: output %v, want the original input", s.Output)
	}
	res, err = h.client.RestartInstance(ctx, &pb.RestartInstanceRequest{InstanceId: finished})
	if err != nil || res.InstanceId != finished {
		t.Fatalf("RestartInstance: %v, %v", res, err)
	}
	h.complete(t, finished)

	// The refusals, by RPC: unknown instance, bad ID, finished instance, wrong state.
	id = h.start(t, "Wait", "still-running", "")
	h.waitStatus(t, id, store.StatusRunning)
	calls := map[string]func(id string) error{
		"RaiseEvent": func(id string) error {
			_, err := h.client.RaiseEvent(ctx, &pb.RaiseEventRequest{InstanceId: id, Name: "go"})
			return err
		},
		"TerminateInstance": func(id string) error {
			_, err := h.client.TerminateInstance(ctx, &pb.TerminateRequest{InstanceId: id})
			return err
		},
		"SuspendInstance": func(id string) error {
			_, err := h.client.SuspendInstance(ctx, &pb.SuspendRequest{InstanceId: id})
			return err
		},
		"ResumeInstance": func(id string) error {
			_, err := h.client.ResumeInstance(ctx, &pb.ResumeRequest{InstanceId: id})
			return err
		},
		"RewindInstance": func(id string) error {
			_, err := h.client.RewindInstance(ctx, &pb.RewindInstanceRequest{InstanceId: id})
			return err
		},
		"RestartInstance": func(id string) error {
			_, err := h.client.RestartInstance(ctx, &pb.RestartInstanceRequest{InstanceId: id})
			return err
		},
	}
	for rpc, call := range calls {
		wantCode(t, rpc+" of an unknown instance", call("no-such-instance"), codes.NotFound)
		wantCode(t, rpc+" of an ID with NUL", call("bad\x00id"), codes.InvalidArgument)
		wantCode(t, rpc+" of an empty ID", call(""), codes.InvalidArgument)
		switch rpc {
		case "RestartInstance":
			wantCode(t, rpc+" of a running instance under its ID", call(id), codes.FailedPrecondition) // as the SDKs expect
		case "RewindInstance":
			wantCode(t, rpc+" of a completed instance", call(finished), codes.FailedPrecondition)
			wantCode(t, rpc+" of a running instance", call(id), codes.FailedPrecondition)
		default:
			wantCode(t, rpc+" of a finished instance", call(finished), codes.FailedPrecondition)
		}
	}
	_, err = h.client.RaiseEvent(ctx, &pb.RaiseEventRequest{InstanceId: id, Name: ""})
	wantCode(t, "RaiseEvent without a name", err, codes.InvalidArgument)
	_, err = h.client.RaiseEvent(ctx, &pb.RaiseEventRequest{InstanceId: id, Name: "go", Input: wrapperspb.String("{nope")})
	wantCode(t, "RaiseEvent with data that is not JSON", err, codes.InvalidArgument)
}

func TestQueryListAndPurge(t *testing.T) {
	h := sqliteHub(t)
	ctx := callContext(t)
	for i := range 3 {
		h.complete(t, h.start(t, "Echo", fmt.Sprintf("q-%d", i), fmt.Sprint(i)))
	}
	h.start(t, "Wait", "q-running", "")
	h.waitStatus(t, "q-running", store.StatusRunning)

	// Pages of two, with payloads, by prefix.
	var got []string
	token := ""
	for pages := 0; ; pages++ {
		q := &pb.InstanceQuery{InstanceIdPrefix: wrapperspb.String("q-"), MaxInstanceCount: 2, FetchInputsAndOutputs: true}
		if token != "" {
			q.ContinuationToken = wrapperspb.String(token)
		}
		res, err := h.client.QueryInstances(ctx, &pb.QueryInstancesRequest{Query: q})
		if err != nil {
			t.Fatalf("QueryInstances: %v", err)
		}
		if len(res.OrchestrationState) > 2 || pages > 2 {
			t.Fatalf("page %d: %d instances", pages, len(res.OrchestrationState))
		}
		for _, s := range res.OrchestrationState {
			got = append(got, s.InstanceId)
			if s.Input == nil {
				t.Errorf("%s: no input with fetchInputsAndOutputs", s.InstanceId)
			}
		}
		if res.ContinuationToken == nil {
			break
		}
		token = res.ContinuationToken.Value
	}
	if strings.Join(got, ",") != "q-0,q-1,q-2,q-running" {
		t.Errorf("query pages: %v", got)
	}
	res, err := h.client.QueryInstances(ctx, &pb.QueryInstancesRequest{Query: &pb.InstanceQuery{
		RuntimeStatus: []pb.OrchestrationStatus{pb.OrchestrationStatus_ORCHESTRATION_STATUS_RUNNING}}})
	if err != nil || len(res.OrchestrationState) != 1 || res.OrchestrationState[0].InstanceId != "q-running" || res.OrchestrationState[0].Input != nil {
		t.Errorf("QueryInstances of RUNNING: %v, %v", res, err)
	}
	for what, q := range map[string]*pb.InstanceQuery{
		"a token no page handed out": {ContinuationToken: wrapperspb.String("not-a-token")},
		"a page too large":           {MaxInstanceCount: maxPageSize + 1},
		"other task hubs":            {TaskHubNames: []*wrapperspb.StringValue{wrapperspb.String("other")}},
		"an unknown status":          {RuntimeStatus: []pb.OrchestrationStatus{42}},
	} {
		_, err := h.client.QueryInstances(ctx, &pb.QueryInstancesRequest{Query: q})
		wantCode(t, "QueryInstances with "+what, err, codes.InvalidArgument)
	}

	// ListInstanceIds: IDs, pages, completion-time bounds.
	ids, err := h.client.ListInstanceIds(ctx, &pb.ListInstanceIdsRequest{PageSize: 3})
	if err != nil || len(ids.InstanceIds) != 3 || ids.LastInstanceKey == nil {
		t.Fatalf("ListInstanceIds page 1: %v, %v", ids, err)
	}
	ids, err = h.client.ListInstanceIds(ctx, &pb.ListInstanceIdsRequest{PageSize: 3, LastInstanceKey: ids.LastInstanceKey})
	if err != nil || strings.Join(ids.InstanceIds, ",") != "q-running" || ids.LastInstanceKey != nil {
		t.Errorf("ListInstanceIds page 2: %v, %v", ids, err)
	}
	ids, err = h.client.ListInstanceIds(ctx, &pb.ListInstanceIdsRequest{CompletedTimeFrom: timestamppb.New(time.Now().Add(-time.Hour))})
	if err != nil || strings.Join(ids.InstanceIds, ",") != "q-0,q-1,q-2" {
		t.Errorf("ListInstanceIds completed in the last hour: %v, %v", ids, err)
	}
	_, err = h.client.ListInstanceIds(ctx, &pb.ListInstanceIdsRequest{LastInstanceKey: wrapperspb.String("not-a-token")})
	wantCode(t, "ListInstanceIds with a bad key", err, codes.InvalidArgument)

	// Purge one, then by filter, then a batch.
	pr, err := h.client.PurgeInstances(ctx, &pb.PurgeInstancesRequest{Request: &pb.PurgeInstancesRequest_InstanceId{InstanceId: "q-0"}})
	if err != nil || pr.DeletedInstanceCount != 1 || !pr.GetIsComplete().GetValue() {
		t.Errorf("PurgeInstances q-0: %v, %v", pr, err)
	}
	if g, err := h.client.GetInstance(ctx, &pb.GetInstanceRequest{InstanceId: "q-0"}); err != nil || g.Exists {
		t.Errorf("GetInstance after purge: %v, %v", g, err)
	}
	purgeOne := func(id string) error {
		_, err := h.client.PurgeInstances(ctx, &pb.PurgeInstancesRequest{Request: &pb.PurgeInstancesRequest_InstanceId{InstanceId: id}})
		return err
	}
	wantCode(t, "PurgeInstances of a purged instance", purgeOne("q-0"), codes.NotFound)
	wantCode(t, "PurgeInstances of a running instance", purgeOne("q-running"), codes.FailedPrecondition)
	wantCode(t, "PurgeInstances of an ID with NUL", purgeOne("bad\x00id"), codes.InvalidArgument)
	_, err = h.client.PurgeInstances(ctx, &pb.PurgeInstancesRequest{})
	wantCode(t, "PurgeInstances of nothing", err, codes.InvalidArgument)
	_, err = h.client.PurgeInstances(ctx, &pb.PurgeInstancesRequest{Request: &pb.PurgeInstancesRequest_PurgeInstanceFilter{
		PurgeInstanceFilter: &pb.PurgeInstanceFilter{RuntimeStatus: []pb.OrchestrationStatus{pb.OrchestrationStatus_ORCHESTRATION_STATUS_RUNNING}}}})
	wantCode(t, "PurgeInstances of RUNNING instances", err, codes.InvalidArgument)

	pr, err = h.client.PurgeInstances(ctx, &pb.PurgeInstancesRequest{Request: &pb.PurgeInstancesRequest_InstanceBatch{
		InstanceBatch: &pb.InstanceBatch{InstanceIds: []string{"q-1", "q-0", "q-running"}}}})
	if err != nil || pr.DeletedInstanceCount != 1 {
		t.Errorf("PurgeInstances of a batch (one purgeable): %v, %v", pr, err)
	}
	pr, err = h.client.PurgeInstances(ctx, &pb.PurgeInstancesRequest{Request: &pb.PurgeInstancesRequest_PurgeInstanceFilter{
		PurgeInstanceFilter: &pb.PurgeInstanceFilter{CreatedTimeFrom: timestamppb.New(time.Now().Add(-time.Hour))}}})
	if err != nil || pr.DeletedInstanceCount != 1 {
		t.Errorf("PurgeInstances by filter (q-2 left): %v, %v", pr, err)
	}
	if g, err := h.client.GetInstance(ctx, &pb.GetInstanceRequest{InstanceId: "q-running"}); err != nil || !g.Exists {
		t.Errorf("the running instance after the purges: %v, %v", g, err)
	}
}

func TestStreamInstanceHistory(t *testing.T) {
	h := sqliteHub(t)
	ctx := callContext(t)
	id := h.start(t, "Story", "story", `"Tokyo"`)
	h.waitStatus(t, id, store.StatusRunning)
	if _, err := h.client.RaiseEvent(ctx, &pb.RaiseEventRequest{InstanceId: id, Name: "go", Input: wrapperspb.String(`"ana"`)}); err != nil {
		t.Fatal(err)
	}
	final := h.complete(t, id)

	stream, err := h.client.StreamInstanceHistory(ctx, &pb.StreamInstanceHistoryRequest{InstanceId: id, ExecutionId: final.ExecutionId})
	if err != nil {
		t.Fatal(err)
	}
	var events []*pb.HistoryEvent
	for {
		chunk, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("StreamInstanceHistory: %v", err)
		}
		events = append(events, chunk.Events...)
	}
	// What a worker replays: the start with its name and input, the activity scheduled and
	// completed (linked by the scheduling event's ID), the timer, the event, the completion.
	var kinds []string
	scheduled := map[int32]string{}
	for _, e := range events {
		switch x := e.EventType.(type) {
		case *pb.HistoryEvent_ExecutionStarted:
			kinds = append(kinds, "started")
			if x.ExecutionStarted.Name != "Story" || x.ExecutionStarted.GetInput().GetValue() != `"Tokyo"` ||
				x.ExecutionStarted.GetOrchestrationInstance().GetInstanceId() != id {
				t.Errorf("ExecutionStarted: %v", x.ExecutionStarted)
			}
		case *pb.HistoryEvent_TaskScheduled:
			kinds = append(kinds, "scheduled")
			scheduled[e.EventId] = x.TaskScheduled.Name
		case *pb.HistoryEvent_TaskCompleted:
			kinds = append(kinds, "completed")
			if scheduled[x.TaskCompleted.TaskScheduledId] != "Greet" || x.TaskCompleted.GetResult().GetValue() != `"Hello Tokyo"` {
				t.Errorf("TaskCompleted %v does not complete the scheduled Greet (%v)", x.TaskCompleted, scheduled)
			}
		case *pb.HistoryEvent_TimerCreated:
			kinds = append(kinds, "timer")
		case *pb.HistoryEvent_TimerFired:
			kinds = append(kinds, "fired")
		case *pb.HistoryEvent_EventRaised:
			kinds = append(kinds, "raised")
			if x.EventRaised.Name != "go" || x.EventRaised.GetInput().GetValue() != `"ana"` {
				t.Errorf("EventRaised: %v", x.EventRaised)
			}
		case *pb.HistoryEvent_ExecutionCompleted:
			kinds = append(kinds, "done")
			if x.ExecutionCompleted.OrchestrationStatus != pb.OrchestrationStatus_ORCHESTRATION_STATUS_COMPLETED ||
				x.ExecutionCompleted.GetResult().GetValue() != `"Hello Tokyo from ana"` {
				t.Errorf("ExecutionCompleted: %v", x.ExecutionCompleted)
			}
		}
		if e.Timestamp == nil {
			t.Errorf("event %v has no timestamp", e)
		}
	}
	// The event may arrive before or after the activity's result and the timer: only the
	// causal order is fixed.
	at := map[string]int{}
	for i, k := range kinds {
		at[k] = i + 1
	}
	got := strings.Join(kinds, ",")
	if len(kinds) != 7 || len(at) != 7 || at["started"] != 1 || at["done"] != 7 || at["scheduled"] > at["completed"] || at["timer"] > at["fired"] {
		t.Errorf("history: %s, want started first, done last, each once, each completion after its scheduling", got)
	}

	recvErr := func(r *pb.StreamInstanceHistoryRequest) error {
		stream, err := h.client.StreamInstanceHistory(ctx, r)
		if err != nil {
			return err
		}
		_, err = stream.Recv()
		return err
	}
	wantCode(t, "StreamInstanceHistory of an unknown instance", recvErr(&pb.StreamInstanceHistoryRequest{InstanceId: "no-such-instance"}), codes.NotFound)
	wantCode(t, "StreamInstanceHistory of an ID with NUL", recvErr(&pb.StreamInstanceHistoryRequest{InstanceId: "bad\x00id"}), codes.InvalidArgument)
	wantCode(t, "StreamInstanceHistory of another execution", recvErr(&pb.StreamInstanceHistoryRequest{InstanceId: id,
		ExecutionId: wrapperspb.String("old")}), codes.NotFound)
}

// TestTaskHubMetadata: a call naming another hub is refused, whatever the RPC; the hub's own
// name matches case-insensitively.
func TestTaskHubMetadata(t *testing.T) {
	h := sqliteHub(t)
	other := metadata.AppendToOutgoingContext(context.Background(), "taskhub", "other")
	_, err := h.client.Hello(other, &emptypb.Empty{})
	wantCode(t, "Hello on another hub", err, codes.NotFound)
	_, err = h.client.StartInstance(other, &pb.CreateInstanceRequest{Name: "Echo"})
	wantCode(t, "StartInstance on another hub", err, codes.NotFound)
	if !strings.Contains(status.Convert(err).Message(), `task hub "other" is not served here`) {
		t.Errorf("message %q does not name the hub", status.Convert(err).Message())
	}
	upper := metadata.AppendToOutgoingContext(context.Background(), "taskhub", "DEFAULT")
	if _, err := h.client.StartInstance(upper, &pb.CreateInstanceRequest{Name: "Echo"}); err != nil {
		t.Errorf("StartInstance on DEFAULT: %v", err)
	}
}

func TestToStatus(t *testing.T) {
	for _, c := range []struct {
		err  error
		want codes.Code
	}{
		{fmt.Errorf("x: %w", control.ErrInstanceNotFound), codes.NotFound},
		{fmt.Errorf("x: %w", control.ErrInstanceExists), codes.AlreadyExists},
		{fmt.Errorf("x: %w", control.ErrInstanceFinished), codes.FailedPrecondition},
		{fmt.Errorf("x: %w", control.ErrInstanceActive), codes.FailedPrecondition},
		{fmt.Errorf("x: %w", control.ErrNotFailed), codes.FailedPrecondition},
		{fmt.Errorf("x: %w", control.ErrInvalidInstanceID), codes.InvalidArgument},
		{fmt.Errorf("x: %w", control.ErrInvalidToken), codes.InvalidArgument},
		{fmt.Errorf("x: %w", store.ErrClosed), codes.Unavailable},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), codes.DeadlineExceeded},
		{fmt.Errorf("x: %w", context.Canceled), codes.Canceled},
		{errors.New("disk on fire"), codes.Internal},
	} {
		got := toStatus(c.err)
		if status.Code(got) != c.want || status.Convert(got).Message() == "" {
			t.Errorf("toStatus(%v) = %v, want %v with a message", c.err, got, c.want)
		}
	}
}

// TestControlOnPostgres runs the commands and the queries on PostgreSQL.
func TestControlOnPostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	st, err := postgres.Open(context.Background(), dsn, postgres.Options{Hub: "default"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h := newHub(t, st)
	ctx := callContext(t)
	id := h.start(t, "Wait", "pg-wait", "")
	if _, err := h.client.RaiseEvent(ctx, &pb.RaiseEventRequest{InstanceId: id, Name: "go", Input: wrapperspb.String(`"pg"`)}); err != nil {
		t.Fatal(err)
	}
	if s := h.complete(t, id); s.GetOutput().GetValue() != `"pg"` {
		t.Errorf("output: %v", s.Output)
	}
	res, err := h.client.QueryInstances(ctx, &pb.QueryInstancesRequest{Query: &pb.InstanceQuery{InstanceIdPrefix: wrapperspb.String("pg-")}})
	if err != nil || len(res.OrchestrationState) != 1 {
		t.Errorf("QueryInstances: %v, %v", res, err)
	}
	_, err = h.client.QueryInstances(ctx, &pb.QueryInstancesRequest{Query: &pb.InstanceQuery{ContinuationToken: wrapperspb.String("not-a-token")}})
	wantCode(t, "QueryInstances with a bad token", err, codes.InvalidArgument)
	pr, err := h.client.PurgeInstances(ctx, &pb.PurgeInstancesRequest{Request: &pb.PurgeInstancesRequest_InstanceId{InstanceId: id}})
	if err != nil || pr.DeletedInstanceCount != 1 {
		t.Errorf("PurgeInstances: %v, %v", pr, err)
	}
}

// watchSignal is a store that says when a wait has taken its watch: the wait is then in flight
// on the server.
type watchSignal struct {
	store.Store
	once    sync.Once
	watched chan struct{}
}

func (w *watchSignal) WatchInstance(id string) (<-chan struct{}, func()) {
	w.once.Do(func() { close(w.watched) })
	return w.Store.WatchInstance(id)
}

// TestShutdownEndsWaits: a wait in flight ends with UNAVAILABLE when the server shuts down,
// instead of holding the graceful stop for as long as the client's deadline.
func TestShutdownEndsWaits(t *testing.T) {
	sq, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "hub.db"), sqlite.Options{Hub: "default"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sq.Close() })
	st := &watchSignal{Store: sq, watched: make(chan struct{})}
	shutdown, stop := context.WithCancel(context.Background())
	defer stop()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(ShutdownOptions(shutdown)...)
	pb.RegisterTaskHubSidecarServiceServer(gs, NewService(Hub{Name: "default", Plane: control.New(st, control.Options{Hub: "default"})}))
	go gs.Serve(lis)
	defer gs.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := pb.NewTaskHubSidecarServiceClient(conn)
	ctx := callContext(t)
	if _, err := client.StartInstance(ctx, &pb.CreateInstanceRequest{Name: "Unowned", InstanceId: "pending"}); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() {
		_, err := client.WaitForInstanceCompletion(ctx, &pb.GetInstanceRequest{InstanceId: "pending"})
		waited <- err
	}()
	select {
	case <-st.watched:
	case <-ctx.Done():
		t.Fatal("the wait never reached the server")
	}
	stop()
	gs.GracefulStop() // returns once the wait has ended
	err = <-waited
	wantCode(t, "WaitForInstanceCompletion at shutdown", err, codes.Unavailable)
	if !strings.Contains(status.Convert(err).Message(), "shutting down") {
		t.Errorf("message %q does not say the server is shutting down", status.Convert(err).Message())
	}
}

// TestPurgeBatchChecksEveryIDFirst: a batch with an ID no store can hold is refused before
// anything is purged, so the caller never loses a count it was not told.
func TestPurgeBatchChecksEveryIDFirst(t *testing.T) {
	h := sqliteHub(t)
	ctx := callContext(t)
	h.complete(t, h.start(t, "Echo", "b-1", "1"))
	_, err := h.client.PurgeInstances(ctx, &pb.PurgeInstancesRequest{Request: &pb.PurgeInstancesRequest_InstanceBatch{
		InstanceBatch: &pb.InstanceBatch{InstanceIds: []string{"b-1", "b\x00"}}}})
	wantCode(t, "PurgeInstances of a batch with a NUL in an ID", err, codes.InvalidArgument)
	res, err := h.client.GetInstance(ctx, &pb.GetInstanceRequest{InstanceId: "b-1"})
	if err != nil || !res.Exists {
		t.Fatalf("b-1 after the refused batch: %+v, %v; want it still there", res, err)
	}
}

// TestShutdownLetsShortCallsFinish: at shutdown only the waits (and streams) are ended; a short
// call gets its context untouched, so shutdown does not cancel it.
func TestShutdownLetsShortCallsFinish(t *testing.T) {
	shutdown, stop := context.WithCancel(context.Background())
	defer stop()
	incoming := context.Background()
	info := &grpc.UnaryServerInfo{FullMethod: pb.TaskHubSidecarService_GetInstance_FullMethodName}
	var got context.Context
	if _, err := unaryShutdown(shutdown)(incoming, nil, info, func(ctx context.Context, _ any) (any, error) {
		got = ctx
		return nil, nil
	}); err != nil || got != incoming {
		t.Fatalf("GetInstance: err %v; its context was replaced (%v), want the call's own, which shutdown does not end", err, got != incoming)
	}
	info.FullMethod = pb.TaskHubSidecarService_WaitForInstanceCompletion_FullMethodName
	_, err := unaryShutdown(shutdown)(incoming, nil, info, func(ctx context.Context, _ any) (any, error) {
		stop() // shutdown ends while the wait is in flight
		<-ctx.Done()
		return nil, status.FromContextError(ctx.Err()).Err()
	})
	wantCode(t, "WaitForInstanceCompletion at shutdown", err, codes.Unavailable)
}

// TestRecursivePurge purges a tree of sub-orchestrations: recursive deletes the finished
// descendants with the instance, by ID and by filter; without it only the instance goes.
func TestRecursivePurge(t *testing.T) {
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "hub.db"), sqlite.Options{Hub: "default"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	leaf := reprise.NewOrchestrator("Leaf", func(ctx *reprise.OrchestrationContext, in string) (string, error) { return in, nil })
	mid := reprise.NewOrchestrator("Mid", func(ctx *reprise.OrchestrationContext, in string) (string, error) {
		return reprise.CallSubOrchestrator[string](ctx, "Leaf", in, reprise.WithInstanceID(in+"-leaf")).Await()
	})
	top := reprise.NewOrchestrator("Top", func(ctx *reprise.OrchestrationContext, in string) (string, error) {
		a := reprise.CallSubOrchestrator[string](ctx, "Mid", in+"-a", reprise.WithInstanceID(in+"-a"))
		b := reprise.CallSubOrchestrator[string](ctx, "Leaf", in+"-b", reprise.WithInstanceID(in+"-b"))
		if _, err := a.Await(); err != nil {
			return "", err
		}
		return b.Await()
	})
	app := reprise.NewApp(reprise.WithStore(st), reprise.WithLogger(slog.New(slog.DiscardHandler)))
	app.Register(leaf, mid, top)
	if err := app.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = app.Shutdown(context.Background()) })
	conn := serveService(t, NewService(Hub{Name: "default", Plane: control.New(st, control.Options{Hub: "default"})}))
	h := &hub{st: st, client: pb.NewTaskHubSidecarServiceClient(conn)}
	ctx := callContext(t)
	for _, id := range []string{"t1", "t2", "t3"} {
		h.start(t, "Top", id, `"`+id+`"`)
		h.complete(t, id)
	}
	exists := func(id string) bool {
		g, err := h.client.GetInstance(ctx, &pb.GetInstanceRequest{InstanceId: id})
		if err != nil {
			t.Fatal(err)
		}
		return g.Exists
	}
	tree := func(id string) []string { return []string{id, id + "-a", id + "-a-leaf", id + "-b"} }

	pr, err := h.client.PurgeInstances(ctx, &pb.PurgeInstancesRequest{Request: &pb.PurgeInstancesRequest_InstanceId{InstanceId: "t1"}, Recursive: true})
	if err != nil || pr.DeletedInstanceCount != 4 {
		t.Fatalf("recursive purge of t1: %v, %v; want its 4 instances deleted", pr, err)
	}
	for _, id := range tree("t1") {
		if exists(id) {
			t.Errorf("%s exists after the recursive purge of t1", id)
		}
	}
	pr, err = h.client.PurgeInstances(ctx, &pb.PurgeInstancesRequest{Request: &pb.PurgeInstancesRequest_InstanceId{InstanceId: "t2"}})
	if err != nil || pr.DeletedInstanceCount != 1 || exists("t2") || !exists("t2-a") {
		t.Fatalf("purge of t2 without recursive: %v, %v; want t2 alone deleted", pr, err)
	}
	// By filter: t3's tree, and t2's orphans (finished, matched by the filter themselves).
	pr, err = h.client.PurgeInstances(ctx, &pb.PurgeInstancesRequest{Recursive: true, Request: &pb.PurgeInstancesRequest_PurgeInstanceFilter{
		PurgeInstanceFilter: &pb.PurgeInstanceFilter{CreatedTimeFrom: timestamppb.New(time.Now().Add(-time.Hour))}}})
	if err != nil || pr.DeletedInstanceCount != 7 {
		t.Fatalf("recursive purge by filter: %v, %v; want the 7 instances left deleted", pr, err)
	}
	for _, id := range append(tree("t2"), tree("t3")...) {
		if exists(id) {
			t.Errorf("%s exists after the recursive purge by filter", id)
		}
	}
}

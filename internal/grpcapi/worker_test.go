package grpcapi

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/reprise-dev/reprise/internal/control"
	"github.com/reprise-dev/reprise/internal/engine"
	"github.com/reprise-dev/reprise/internal/grpcapi/pb"
	"github.com/reprise-dev/reprise/internal/history"
	"github.com/reprise-dev/reprise/internal/pgtest"
	"github.com/reprise-dev/reprise/internal/storefault"
	"github.com/reprise-dev/reprise/store"
	"github.com/reprise-dev/reprise/store/postgres"
	"github.com/reprise-dev/reprise/store/sqlite"
)

// These tests drive the worker RPCs with the protocol's messages themselves, to check what the
// server does with each (including what no SDK would send). That the SDKs' workers run on it is
// shown by the interop tests with the SDKs (cmd/reprise, interop/durabletask-go).

type workHub struct {
	st      store.Store
	svc     *Service
	signals *engine.Signals
	conn    *grpc.ClientConn
	client  pb.TaskHubSidecarServiceClient
}

// serveWork serves a hub with workers on a SQLite store of its own. The lease is an hour, so
// that work handed out again within a test was given back, never left to expire.
func serveWork(t *testing.T, mod func(*Work)) *workHub {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "hub.db"), sqlite.Options{Hub: "default"})
	if err != nil {
		t.Fatal(err)
	}
	signals := engine.NewSignals(st)
	t.Cleanup(func() { signals.Close(); st.Close() })
	w := &Work{Store: st, Signals: signals, LeaseDuration: time.Hour, AbandonDelay: time.Millisecond,
		Logger: slog.New(slog.DiscardHandler)}
	if mod != nil {
		mod(w)
	}
	svc := NewService(Hub{Name: "default", Plane: control.New(st, control.Options{Hub: "default"}), Work: w})
	conn := serveService(t, svc, ServerOptions()...)
	return &workHub{st: st, svc: svc, signals: signals, conn: conn, client: pb.NewTaskHubSidecarServiceClient(conn)}
}

// filters names what a test worker runs.
func filters(orchestrators []string, activities []string) *pb.WorkItemFilters {
	f := &pb.WorkItemFilters{}
	for _, n := range orchestrators {
		f.Orchestrations = append(f.Orchestrations, &pb.OrchestrationFilter{Name: n})
	}
	for _, n := range activities {
		f.Activities = append(f.Activities, &pb.ActivityFilter{Name: n})
	}
	return f
}

// openStream opens a work-item stream; cancel ends it.
func (h *workHub) openStream(t *testing.T, f *pb.WorkItemFilters) (grpc.ServerStreamingClient[pb.WorkItem], context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(callContext(t))
	stream, err := h.client.GetWorkItems(ctx, &pb.GetWorkItemsRequest{WorkItemFilters: f})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if _, err := stream.Header(); err != nil { // the stream is open on the server
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(cancel)
	return stream, cancel
}

// next returns the next work item that is not a health ping.
func next(t *testing.T, s grpc.ServerStreamingClient[pb.WorkItem]) *pb.WorkItem {
	t.Helper()
	for {
		item, err := s.Recv()
		if err != nil {
			t.Fatalf("Recv: %v", err)
		}
		if item.GetHealthPing() == nil {
			return item
		}
	}
}

func (h *workHub) start(t *testing.T, name, id string) {
	t.Helper()
	if _, err := h.client.StartInstance(callContext(t), &pb.CreateInstanceRequest{Name: name, InstanceId: id, Input: wrapperspb.String(`"in"`)}); err != nil {
		t.Fatal(err)
	}
}

func (h *workHub) wait(t *testing.T, id string) *pb.OrchestrationState {
	t.Helper()
	r, err := h.client.WaitForInstanceCompletion(callContext(t), &pb.GetInstanceRequest{InstanceId: id, GetInputsAndOutputs: true})
	if err != nil {
		t.Fatal(err)
	}
	return r.OrchestrationState
}

func scheduleTask(id int32, name, input string) *pb.OrchestratorAction {
	return &pb.OrchestratorAction{Id: id, OrchestratorActionType: &pb.OrchestratorAction_ScheduleTask{
		ScheduleTask: &pb.ScheduleTaskAction{Name: name, Input: wrapperspb.String(input)}}}
}

func completeWith(id int32, st pb.OrchestrationStatus, result string) *pb.OrchestratorAction {
	return &pb.OrchestratorAction{Id: id, OrchestratorActionType: &pb.OrchestratorAction_CompleteOrchestration{
		CompleteOrchestration: &pb.CompleteOrchestrationAction{OrchestrationStatus: st, Result: wrapperspb.String(result)}}}
}

func eventTypes(evs []*pb.HistoryEvent) []string {
	var out []string
	for _, e := range evs {
		out = append(out, string(e.ProtoReflect().WhichOneof(e.ProtoReflect().Descriptor().Oneofs().ByName("eventType")).Name()))
	}
	return out
}

// TestWorkerTurns runs a one-activity orchestration through the worker RPCs and checks each
// work item's events, the completions' answers and the result.
func TestWorkerTurns(t *testing.T) {
	h := serveWork(t, nil)
	s, _ := h.openStream(t, filters([]string{"Seq"}, []string{"Act"}))
	h.start(t, "Seq", "one")

	item := next(t, s)
	req := item.GetOrchestratorRequest()
	if req == nil || req.InstanceId != "one" || item.CompletionToken == "" {
		t.Fatalf("first item %v, want an orchestrator request for %q with a token", item, "one")
	}
	if got := eventTypes(req.NewEvents); len(got) != 2 || got[0] != "orchestratorStarted" || got[1] != "executionStarted" {
		t.Fatalf("first turn's new events %v, want orchestratorStarted, executionStarted", got)
	}
	if st := req.NewEvents[1].GetExecutionStarted(); st.Name != "Seq" || st.Input.GetValue() != `"in"` ||
		st.OrchestrationInstance.GetExecutionId().GetValue() != req.ExecutionId.GetValue() {
		t.Errorf("executionStarted %v", st)
	}
	if _, err := h.client.CompleteOrchestratorTask(callContext(t), &pb.OrchestratorResponse{
		InstanceId: "one", CompletionToken: item.CompletionToken, CustomStatus: wrapperspb.String(`"working"`),
		Actions: []*pb.OrchestratorAction{scheduleTask(0, "Act", `"x"`)}}); err != nil {
		t.Fatalf("CompleteOrchestratorTask: %v", err)
	}
	// The same token again: the item is done.
	_, err := h.client.CompleteOrchestratorTask(callContext(t), &pb.OrchestratorResponse{InstanceId: "one", CompletionToken: item.CompletionToken})
	wantCode(t, "a second completion with the same token", err, codes.NotFound)

	item = next(t, s)
	act := item.GetActivityRequest()
	if act == nil || act.Name != "Act" || act.Input.GetValue() != `"x"` || act.TaskId != 0 ||
		act.OrchestrationInstance.GetInstanceId() != "one" || act.OrchestrationInstance.GetExecutionId().GetValue() != req.ExecutionId.GetValue() {
		t.Fatalf("second item %v, want the activity request", item)
	}
	if _, err := h.client.CompleteActivityTask(callContext(t), &pb.ActivityResponse{InstanceId: "one", TaskId: 0,
		Result: wrapperspb.String(`"done"`), CompletionToken: item.CompletionToken}); err != nil {
		t.Fatalf("CompleteActivityTask: %v", err)
	}

	item = next(t, s)
	req = item.GetOrchestratorRequest()
	if got := eventTypes(req.GetPastEvents()); len(got) != 3 || got[2] != "taskScheduled" {
		t.Fatalf("third item's past events %v, want orchestratorStarted, executionStarted, taskScheduled", got)
	}
	if got := eventTypes(req.NewEvents); len(got) != 2 || got[1] != "taskCompleted" ||
		req.NewEvents[1].GetTaskCompleted().Result.GetValue() != `"done"` {
		t.Fatalf("third item's new events %v, want orchestratorStarted, taskCompleted", got)
	}
	if _, err := h.client.CompleteOrchestratorTask(callContext(t), &pb.OrchestratorResponse{
		InstanceId: "one", CompletionToken: item.CompletionToken, CustomStatus: wrapperspb.String(`"working"`),
		Actions: []*pb.OrchestratorAction{completeWith(1, pb.OrchestrationStatus_ORCHESTRATION_STATUS_COMPLETED, `"all done"`)}}); err != nil {
		t.Fatalf("CompleteOrchestratorTask: %v", err)
	}
	final := h.wait(t, "one")
	if final.OrchestrationStatus != pb.OrchestrationStatus_ORCHESTRATION_STATUS_COMPLETED || final.Output.GetValue() != `"all done"` ||
		final.CustomStatus.GetValue() != `"working"` {
		t.Errorf("final state %v, want COMPLETED with the output and the custom status", final)
	}
}

// TestForgedAndStaleCompletions checks that completions and abandons for no waiting item answer
// NOT_FOUND and change nothing.
func TestForgedAndStaleCompletions(t *testing.T) {
	h := serveWork(t, nil)
	s, _ := h.openStream(t, filters([]string{"Seq"}, []string{"Act"}))
	h.start(t, "Seq", "one")
	item := next(t, s)

	for _, token := range []string{"forged", item.CompletionToken + "x", "a\x00b"} {
		_, err := h.client.CompleteOrchestratorTask(callContext(t), &pb.OrchestratorResponse{InstanceId: "one", CompletionToken: token,
			Actions: []*pb.OrchestratorAction{completeWith(0, pb.OrchestrationStatus_ORCHESTRATION_STATUS_COMPLETED, `1`)}})
		wantCode(t, "a completion with a forged token", err, codes.NotFound)
		_, err = h.client.CompleteActivityTask(callContext(t), &pb.ActivityResponse{InstanceId: "one", CompletionToken: token})
		wantCode(t, "an activity completion with a forged token", err, codes.NotFound)
		_, err = h.client.AbandonTaskOrchestratorWorkItem(callContext(t), &pb.AbandonOrchestrationTaskRequest{CompletionToken: token})
		wantCode(t, "an abandon with a forged token", err, codes.NotFound)
	}
	_, err := h.client.AbandonTaskActivityWorkItem(callContext(t), &pb.AbandonActivityTaskRequest{})
	wantCode(t, "an abandon without a token", err, codes.InvalidArgument)
	// Without a token, a completion for the instance is taken as an older SDK's.
	_, err = h.client.CompleteOrchestratorTask(callContext(t), &pb.OrchestratorResponse{InstanceId: "unknown"})
	wantCode(t, "a tokenless completion for an instance with no item", err, codes.NotFound)

	got, err := h.client.GetInstance(callContext(t), &pb.GetInstanceRequest{InstanceId: "one"})
	if err != nil || got.OrchestrationState.OrchestrationStatus != pb.OrchestrationStatus_ORCHESTRATION_STATUS_PENDING {
		t.Fatalf("after forged completions: %v %v, want the instance still PENDING", got, err)
	}
	if _, err := h.client.CompleteOrchestratorTask(callContext(t), &pb.OrchestratorResponse{InstanceId: "one",
		Actions: []*pb.OrchestratorAction{completeWith(0, pb.OrchestrationStatus_ORCHESTRATION_STATUS_COMPLETED, `1`)}}); err != nil {
		t.Fatalf("a tokenless completion for the waiting item: %v", err)
	}
	if st := h.wait(t, "one"); st.OrchestrationStatus != pb.OrchestrationStatus_ORCHESTRATION_STATUS_COMPLETED || st.Output.GetValue() != "1" {
		t.Errorf("final state %v", st)
	}
}

// TestDroppedStreamGivesWorkBack drops a stream holding an orchestration turn and an activity
// and checks that another stream gets both at once: with an hour's lease, only the release at
// the stream's end can hand them out again.
func TestDroppedStreamGivesWorkBack(t *testing.T) {
	h := serveWork(t, nil)
	s1, drop1 := h.openStream(t, filters([]string{"Seq"}, []string{"Act"}))
	h.start(t, "Seq", "one")
	h.start(t, "Seq", "two")
	first := next(t, s1)
	if _, err := h.client.CompleteOrchestratorTask(callContext(t), &pb.OrchestratorResponse{InstanceId: first.GetOrchestratorRequest().InstanceId,
		CompletionToken: first.CompletionToken, Actions: []*pb.OrchestratorAction{scheduleTask(0, "Act", `1`)}}); err != nil {
		t.Fatal(err)
	}
	// s1 now holds the other instance's turn and the activity (in either order).
	held := map[string]bool{}
	for len(held) < 2 {
		item := next(t, s1)
		if r := item.GetOrchestratorRequest(); r != nil {
			held["turn "+r.InstanceId] = true
		} else {
			held["activity "+item.GetActivityRequest().GetOrchestrationInstance().GetInstanceId()] = true
		}
	}
	drop1()

	s2, _ := h.openStream(t, filters([]string{"Seq"}, []string{"Act"}))
	again := map[string]bool{}
	for len(again) < 2 {
		item := next(t, s2)
		if r := item.GetOrchestratorRequest(); r != nil {
			again["turn "+r.InstanceId] = true
		} else {
			again["activity "+item.GetActivityRequest().GetOrchestrationInstance().GetInstanceId()] = true
		}
	}
	for k := range held {
		if !again[k] {
			t.Errorf("%s, held by the dropped stream, was not handed out again (got %v)", k, again)
		}
	}
}

// TestFiltersAreHonoured checks that a stream gets only the names it listed, and that the work
// of other names waits for a stream that lists them.
func TestFiltersAreHonoured(t *testing.T) {
	h := serveWork(t, nil)
	sa, _ := h.openStream(t, filters([]string{"A"}, []string{"rejected", rejectAll}))
	h.start(t, "B", "b")
	h.start(t, "A", "a")
	item := next(t, sa)
	if id := item.GetOrchestratorRequest().GetInstanceId(); id != "a" {
		t.Fatalf("stream of A got %v, want the turn of instance a", item)
	}
	sb, _ := h.openStream(t, filters([]string{"b"}, []string{rejectAll})) // names match in any case
	if id := next(t, sb).GetOrchestratorRequest().GetInstanceId(); id != "b" {
		t.Fatalf("stream of b got the turn of %q, want b", id)
	}
}

// TestAbandonHandsOutAgain abandons a turn and an activity and gets each again.
func TestAbandonHandsOutAgain(t *testing.T) {
	h := serveWork(t, nil)
	s, _ := h.openStream(t, filters([]string{"Seq"}, []string{"Act"}))
	h.start(t, "Seq", "one")
	item := next(t, s)
	if _, err := h.client.AbandonTaskOrchestratorWorkItem(callContext(t), &pb.AbandonOrchestrationTaskRequest{CompletionToken: item.CompletionToken}); err != nil {
		t.Fatal(err)
	}
	again := next(t, s)
	if again.GetOrchestratorRequest().GetInstanceId() != "one" || again.CompletionToken == item.CompletionToken {
		t.Fatalf("after abandon got %v, want the same turn with a new token", again)
	}
	if _, err := h.client.CompleteOrchestratorTask(callContext(t), &pb.OrchestratorResponse{InstanceId: "one", CompletionToken: again.CompletionToken,
		Actions: []*pb.OrchestratorAction{scheduleTask(0, "Act", `1`)}}); err != nil {
		t.Fatal(err)
	}
	act := next(t, s)
	if _, err := h.client.AbandonTaskActivityWorkItem(callContext(t), &pb.AbandonActivityTaskRequest{CompletionToken: act.CompletionToken}); err != nil {
		t.Fatal(err)
	}
	if again := next(t, s); again.GetActivityRequest().GetName() != "Act" {
		t.Fatalf("after abandoning the activity got %v, want it again", again)
	}
}

// TestInvalidResponsesFailTheInstance sends responses the engine cannot apply: each answers
// INVALID_ARGUMENT and fails its instance with the reason, and nothing else is changed.
func TestInvalidResponsesFailTheInstance(t *testing.T) {
	h := serveWork(t, nil)
	s, _ := h.openStream(t, filters([]string{"Seq"}, nil))
	cases := map[string][]*pb.OrchestratorAction{
		"non-JSON input": {scheduleTask(0, "Act", "not json")},
		"empty name":     {scheduleTask(0, "", `1`)},
		"NUL in name":    {scheduleTask(0, "a\x00b", `1`)},
		"duplicate IDs":  {scheduleTask(0, "Act", `1`), scheduleTask(0, "Act", `2`)},
		"timer out of range": {{Id: 0, OrchestratorActionType: &pb.OrchestratorAction_CreateTimer{CreateTimer: &pb.CreateTimerAction{
			FireAt: timestamppb.New(time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC))}}}},
		"unknown status": {completeWith(0, pb.OrchestrationStatus_ORCHESTRATION_STATUS_PENDING, `1`)},
		"no action type": {{Id: 0}},
	}
	cases["chunked"] = nil
	for name, actions := range cases {
		t.Run(name, func(t *testing.T) {
			id := "bad-" + name
			h.start(t, "Seq", id)
			item := next(t, s)
			r := &pb.OrchestratorResponse{InstanceId: id, CompletionToken: item.CompletionToken, Actions: actions}
			//lint:ignore SA1019 the deprecated field older workers still send
			r.IsPartial = name == "chunked"
			_, err := h.client.CompleteOrchestratorTask(callContext(t), r)
			wantCode(t, name, err, codes.InvalidArgument)
			st := h.wait(t, id)
			if st.OrchestrationStatus != pb.OrchestrationStatus_ORCHESTRATION_STATUS_FAILED || st.FailureDetails.GetErrorType() != "InvalidWorkerResponse" {
				t.Errorf("instance after %s: %v, want FAILED with InvalidWorkerResponse", name, st)
			}
			tasks, err := h.st.ClaimActivities(context.Background(), "check", store.Names{"Act"}, 10, time.Millisecond)
			if err != nil || len(tasks) != 0 {
				t.Errorf("activities scheduled by a refused response: %v %v", tasks, err)
			}
		})
	}
}

// TestStreamsDoNotLeak opens and drops streams in a loop (some while they hold work) and checks
// that goroutines, signal subscriptions and waiting items come back to where they were.
func TestStreamsDoNotLeak(t *testing.T) {
	h := serveWork(t, func(w *Work) { w.PingInterval = time.Millisecond })
	h.start(t, "Seq", "held")
	before := runtime.NumGoroutine()
	for i := range 30 {
		s, drop := h.openStream(t, filters([]string{"Seq"}, nil))
		if i%2 == 0 {
			next(t, s) // holds the turn when it is dropped
		}
		drop()
		for {
			_, err := s.Recv()
			if err == nil {
				continue // a ping sent before the drop
			}
			if status.Code(err) != codes.Canceled && err != io.EOF {
				t.Fatalf("Recv after drop: %v", err)
			}
			break
		}
	}
	// The server side of a dropped stream ends after the client sees it end: wait for it.
	deadline := time.Now().Add(hangGuard)
	for h.signals.Subscribers(store.OrchestrationWorkKind)+h.svc.dispatched.size() > 0 || runtime.NumGoroutine() > before+5 {
		if time.Now().After(deadline) {
			t.Fatalf("after 30 dropped streams: %d subscriptions, %d items waiting, %d goroutines (%d before)",
				h.signals.Subscribers(store.OrchestrationWorkKind), h.svc.dispatched.size(), runtime.NumGoroutine(), before)
		}
		runtime.Gosched()
		time.Sleep(10 * time.Millisecond) // polling a count: there is no signal for "a goroutine ended"
	}
	// The turn is still there for the next stream.
	s, _ := h.openStream(t, filters([]string{"Seq"}, nil))
	if id := next(t, s).GetOrchestratorRequest().GetInstanceId(); id != "held" {
		t.Errorf("after the loop got %q, want the held turn", id)
	}
}

// TestLostLeaseCompletion completes a turn whose instance was replaced meanwhile: NOT_FOUND,
// and the replacement is untouched.
func TestLostLeaseCompletion(t *testing.T) {
	h := serveWork(t, nil)
	s, _ := h.openStream(t, filters([]string{"Seq"}, nil))
	h.start(t, "Seq", "one")
	item := next(t, s)
	// Replace it (any state may be replaced) while the worker holds the turn.
	if _, err := h.client.StartInstance(callContext(t), &pb.CreateInstanceRequest{Name: "Seq", InstanceId: "one",
		OrchestrationIdReusePolicy: &pb.OrchestrationIdReusePolicy{ReplaceableStatus: []pb.OrchestrationStatus{
			pb.OrchestrationStatus_ORCHESTRATION_STATUS_PENDING, pb.OrchestrationStatus_ORCHESTRATION_STATUS_RUNNING,
			pb.OrchestrationStatus_ORCHESTRATION_STATUS_SUSPENDED, pb.OrchestrationStatus_ORCHESTRATION_STATUS_COMPLETED,
			pb.OrchestrationStatus_ORCHESTRATION_STATUS_FAILED, pb.OrchestrationStatus_ORCHESTRATION_STATUS_TERMINATED}}}); err != nil {
		t.Fatal(err)
	}
	_, err := h.client.CompleteOrchestratorTask(callContext(t), &pb.OrchestratorResponse{InstanceId: "one", CompletionToken: item.CompletionToken,
		Actions: []*pb.OrchestratorAction{completeWith(0, pb.OrchestrationStatus_ORCHESTRATION_STATUS_COMPLETED, `"stale"`)}})
	wantCode(t, "a completion for a replaced instance", err, codes.NotFound)
	got, err := h.client.GetInstance(callContext(t), &pb.GetInstanceRequest{InstanceId: "one", GetInputsAndOutputs: true})
	if err != nil || got.OrchestrationState.OrchestrationStatus == pb.OrchestrationStatus_ORCHESTRATION_STATUS_COMPLETED {
		t.Errorf("the replacement: %v %v, want it not completed by the stale turn", got, err)
	}
}

// TestWorkerVersions checks that a sub-orchestration gets its action's version and tags, and
// that continue-as-new's newVersion becomes the next execution's version, seen by the worker.
func TestWorkerVersions(t *testing.T) {
	h := serveWork(t, nil)
	s, _ := h.openStream(t, filters([]string{"Seq", "Child"}, nil))
	h.start(t, "Seq", "parent")
	item := next(t, s)
	sub := &pb.OrchestratorAction{Id: 0, OrchestratorActionType: &pb.OrchestratorAction_CreateSubOrchestration{CreateSubOrchestration: &pb.CreateSubOrchestrationAction{
		InstanceId: "child", Name: "Child", Version: wrapperspb.String("2.0"), Tags: map[string]string{"team": "a"}}}}
	if _, err := h.client.CompleteOrchestratorTask(callContext(t), &pb.OrchestratorResponse{InstanceId: "parent", CompletionToken: item.CompletionToken,
		Actions: []*pb.OrchestratorAction{sub}}); err != nil {
		t.Fatal(err)
	}
	item = next(t, s)
	child := item.GetOrchestratorRequest()
	if child.GetInstanceId() != "child" {
		t.Fatalf("got %v, want the child's first turn", item)
	}
	if st := child.NewEvents[1].GetExecutionStarted(); st.GetVersion().GetValue() != "2.0" || st.Tags["team"] != "a" ||
		st.GetParentInstance().GetOrchestrationInstance().GetInstanceId() != "parent" {
		t.Errorf("child's executionStarted %v, want version 2.0, tag team=a and the parent", st)
	}
	can := &pb.OrchestratorAction{Id: 0, OrchestratorActionType: &pb.OrchestratorAction_CompleteOrchestration{CompleteOrchestration: &pb.CompleteOrchestrationAction{
		OrchestrationStatus: pb.OrchestrationStatus_ORCHESTRATION_STATUS_CONTINUED_AS_NEW, Result: wrapperspb.String(`"again"`), NewVersion: wrapperspb.String("3.0")}}}
	if _, err := h.client.CompleteOrchestratorTask(callContext(t), &pb.OrchestratorResponse{InstanceId: "child", CompletionToken: item.CompletionToken,
		Actions: []*pb.OrchestratorAction{can}}); err != nil {
		t.Fatal(err)
	}
	item = next(t, s)
	req := item.GetOrchestratorRequest()
	if req.GetInstanceId() != "child" || len(req.PastEvents) != 0 {
		t.Fatalf("got %v, want the child's new execution with no past", item)
	}
	if st := req.NewEvents[1].GetExecutionStarted(); st.GetVersion().GetValue() != "3.0" || st.Input.GetValue() != `"again"` || st.Tags["team"] != "a" {
		t.Errorf("new execution's start %v, want version 3.0, the new input and the tags kept", st)
	}
	got, err := h.client.GetInstance(callContext(t), &pb.GetInstanceRequest{InstanceId: "child"})
	if err != nil || got.OrchestrationState.GetVersion().GetValue() != "3.0" {
		t.Errorf("child after continue-as-new: %v %v, want version 3.0", got, err)
	}
}

// TestUnfilteredStreams checks that a stream without filters gets work of any name but those Go
// code in the process runs (Work.Taken*), which wait for their own host.
func TestUnfilteredStreams(t *testing.T) {
	h := serveWork(t, func(w *Work) { w.TakenOrchestrators = []string{"GoOnly"} })
	s, _ := h.openStream(t, nil)
	h.start(t, "goonly", "go") // names match in any case
	h.start(t, "Anything", "js")
	if id := next(t, s).GetOrchestratorRequest().GetInstanceId(); id != "js" {
		t.Fatalf("unfiltered stream got the turn of %q, want js", id)
	}
	work, err := h.st.ClaimOrchestrations(context.Background(), "go-host", store.Names{"GoOnly"}, 10, time.Minute)
	if err != nil || len(work) != 1 || work[0].Instance.ID != "go" {
		t.Fatalf("the Go host's claim: %v %v, want the instance the stream left", work, err)
	}
}

// TestVersionFilters checks that a stream whose filter lists versions gets only instances of
// those versions; another version waits for a stream that runs it.
func TestVersionFilters(t *testing.T) {
	h := serveWork(t, nil)
	v2 := &pb.WorkItemFilters{Orchestrations: []*pb.OrchestrationFilter{{Name: "Seq", Versions: []string{"2"}}}}
	s2, _ := h.openStream(t, v2)
	for id, version := range map[string]string{"old": "1", "new": "2"} {
		if _, err := h.client.StartInstance(callContext(t), &pb.CreateInstanceRequest{Name: "Seq", InstanceId: id, Version: wrapperspb.String(version)}); err != nil {
			t.Fatal(err)
		}
	}
	if id := next(t, s2).GetOrchestratorRequest().GetInstanceId(); id != "new" {
		t.Fatalf("the stream of version 2 got %q, want new", id)
	}
	v1 := &pb.WorkItemFilters{Orchestrations: []*pb.OrchestrationFilter{{Name: "Seq", Versions: []string{"1"}}}}
	s1, _ := h.openStream(t, v1)
	if id := next(t, s1).GetOrchestratorRequest().GetInstanceId(); id != "old" {
		t.Fatalf("the stream of version 1 got %q, want old", id)
	}
}

// rawCodec sends bytes as they are, to put malformed messages on the wire.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*(v.(*[]byte)))}, nil
}
func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*(v.(*[]byte)) = data.Materialize()
	return nil
}
func (rawCodec) Name() string { return "proto" }

// TestMalformedAndOversizedMessages sends bytes that are no protobuf message, and a completion
// larger than the server takes: each gets a status, and the server goes on serving.
func TestMalformedAndOversizedMessages(t *testing.T) {
	h := serveWork(t, nil)
	cc, err := grpc.NewClient(h.conn.Target(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(2*MaxMessageBytes)))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	garbage := []byte{0xff, 0xff, 0xff, 0xff, 0x0f, 0x01}
	for _, m := range []string{pb.TaskHubSidecarService_CompleteOrchestratorTask_FullMethodName, pb.TaskHubSidecarService_CompleteActivityTask_FullMethodName,
		pb.TaskHubSidecarService_StartInstance_FullMethodName} {
		var out []byte
		err := cc.Invoke(callContext(t), m, &garbage, &out, grpc.ForceCodecV2(rawCodec{}))
		if status.Code(err) != codes.Internal || !strings.Contains(status.Convert(err).Message(), "unmarshal") {
			t.Errorf("%s with malformed bytes: %v, want INTERNAL saying the request could not be unmarshalled", m, err)
		}
	}
	big := strings.Repeat("x", MaxMessageBytes+1)
	_, err = pb.NewTaskHubSidecarServiceClient(cc).CompleteActivityTask(callContext(t), &pb.ActivityResponse{InstanceId: "x", Result: wrapperspb.String(big)})
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("a completion over %d bytes: %v, want RESOURCE_EXHAUSTED", MaxMessageBytes, err)
	}
	// Still serving.
	s, _ := h.openStream(t, filters([]string{"Seq"}, nil))
	h.start(t, "Seq", "after")
	if id := next(t, s).GetOrchestratorRequest().GetInstanceId(); id != "after" {
		t.Errorf("after the bad messages got %q, want the new instance's turn", id)
	}
}

// TestStreamLimits checks a stream's maxConcurrentActivityWorkItems: with a limit of 2 and five
// activities ready, the stream holds two and the other three stay unclaimed; completing one
// hands out the next.
func TestStreamLimits(t *testing.T) {
	h := serveWork(t, nil)
	ctx, cancel := context.WithCancel(callContext(t))
	defer cancel()
	s, err := h.client.GetWorkItems(ctx, &pb.GetWorkItemsRequest{MaxConcurrentActivityWorkItems: 2, WorkItemFilters: filters([]string{"Seq"}, []string{"Act"})})
	if err != nil {
		t.Fatal(err)
	}
	h.start(t, "Seq", "fan")
	item := next(t, s)
	var actions []*pb.OrchestratorAction
	for i := range int32(5) {
		actions = append(actions, scheduleTask(i, "Act", `1`))
	}
	if _, err := h.client.CompleteOrchestratorTask(callContext(t), &pb.OrchestratorResponse{InstanceId: "fan", CompletionToken: item.CompletionToken, Actions: actions}); err != nil {
		t.Fatal(err)
	}
	held := []*pb.WorkItem{next(t, s), next(t, s)}
	// The stream is at its limit: the other three are there for any claimer (a probe whose
	// lease ends at once, so the stream can have them later).
	probe, err := h.st.ClaimActivities(context.Background(), "probe", store.Names{"Act"}, 10, time.Nanosecond)
	if err != nil || len(probe) != 3 {
		t.Fatalf("while the stream holds two: the store had %d unclaimed activities (%v), want 3", len(probe), err)
	}
	if _, err := h.client.CompleteActivityTask(callContext(t), &pb.ActivityResponse{InstanceId: "fan", TaskId: held[0].GetActivityRequest().TaskId,
		Result: wrapperspb.String(`1`), CompletionToken: held[0].CompletionToken}); err != nil {
		t.Fatal(err)
	}
	// A slot freed: the next item is an activity (or the orchestrator's turn for the result).
	if third := next(t, s); third.GetActivityRequest() == nil && third.GetOrchestratorRequest() == nil {
		t.Fatalf("after a completion got %v, want another work item", third)
	}
}

// TestStreamsLearnWhatTheirWorkerDoesNotRun: a worker without filters that answers "not
// registered" (as the SDKs do for a name they do not have) gives the item back instead of failing
// it, and its stream stops claiming that name; a stream whose worker has it runs it.
func TestStreamsLearnWhatTheirWorkerDoesNotRun(t *testing.T) {
	h := serveWork(t, nil)
	a, dropA := h.openStream(t, nil)
	h.start(t, "OnlyOnB", "x")
	item := next(t, a)
	notMine := &pb.OrchestratorAction{Id: -1, OrchestratorActionType: &pb.OrchestratorAction_CompleteOrchestration{CompleteOrchestration: &pb.CompleteOrchestrationAction{
		OrchestrationStatus: pb.OrchestrationStatus_ORCHESTRATION_STATUS_FAILED,
		FailureDetails:      &pb.TaskFailureDetails{ErrorType: "OrchestratorNotRegisteredError", ErrorMessage: "The orchestrator 'OnlyOnB' is not registered."}}}}
	if _, err := h.client.CompleteOrchestratorTask(callContext(t), &pb.OrchestratorResponse{InstanceId: "x", CompletionToken: item.CompletionToken,
		Actions: []*pb.OrchestratorAction{notMine}}); err != nil {
		t.Fatal(err)
	}
	got, err := h.client.GetInstance(callContext(t), &pb.GetInstanceRequest{InstanceId: "x"})
	if err != nil || got.OrchestrationState.OrchestrationStatus != pb.OrchestrationStatus_ORCHESTRATION_STATUS_PENDING {
		t.Fatalf("after a worker said it does not run the orchestrator: %v %v, want the instance still PENDING", got, err)
	}
	dropA()
	b, _ := h.openStream(t, nil)
	item = next(t, b)
	if item.GetOrchestratorRequest().GetInstanceId() != "x" {
		t.Fatalf("the second stream got %v, want the turn the first gave back", item)
	}
	// The second worker runs it and calls an activity that only a third has.
	if _, err := h.client.CompleteOrchestratorTask(callContext(t), &pb.OrchestratorResponse{InstanceId: "x", CompletionToken: item.CompletionToken,
		Actions: []*pb.OrchestratorAction{scheduleTask(0, "OnlyOnC", `1`)}}); err != nil {
		t.Fatal(err)
	}
	// b's worker does not run the activity either: it says so, and a stream that lists it runs it.
	it := next(t, b)
	act := it.GetActivityRequest()
	if act == nil {
		t.Fatalf("got %v, want the activity", it)
	}
	if _, err := h.client.CompleteActivityTask(callContext(t), &pb.ActivityResponse{InstanceId: "x", TaskId: act.TaskId, CompletionToken: it.CompletionToken,
		FailureDetails: &pb.TaskFailureDetails{ErrorType: "ActivityNotRegisteredError", ErrorMessage: "Activity function 'OnlyOnC' is not registered."}}); err != nil {
		t.Fatal(err)
	}
	c, _ := h.openStream(t, filters([]string{rejectAll}, []string{"OnlyOnC"})) // no orchestrations
	it = next(t, c)
	if it.GetActivityRequest().GetName() != "OnlyOnC" {
		t.Fatalf("the stream of OnlyOnC got %v, want the activity b gave back", it)
	}
	if _, err := h.client.CompleteActivityTask(callContext(t), &pb.ActivityResponse{InstanceId: "x", TaskId: act.TaskId, CompletionToken: it.CompletionToken,
		Result: wrapperspb.String(`"ran"`)}); err != nil {
		t.Fatal(err)
	}
	item = next(t, b)
	if r := item.GetOrchestratorRequest(); r == nil || len(r.NewEvents) < 2 || r.NewEvents[1].GetTaskCompleted().GetResult().GetValue() != `"ran"` {
		t.Fatalf("the turn after the activity: %v, want its result", item)
	}
}

// TestWorkersOnPostgres serves one PostgreSQL hub from two servers (two stores on one database,
// as two `reprise serve` processes): a stream on one server runs what a client of the other
// started, and when that stream drops while it holds a turn, a stream on the first server gets
// the turn at once (an hour's lease: only the release hands it out).
func TestWorkersOnPostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	open := func() *workHub {
		st, err := postgres.Open(context.Background(), dsn, postgres.Options{Hub: "default"})
		if err != nil {
			t.Fatal(err)
		}
		signals := engine.NewSignals(st)
		t.Cleanup(func() { signals.Close(); st.Close() })
		svc := NewService(Hub{Name: "default", Plane: control.New(st, control.Options{Hub: "default"}),
			Work: &Work{Store: st, Signals: signals, LeaseDuration: time.Hour, Logger: slog.New(slog.DiscardHandler)}})
		conn := serveService(t, svc, ServerOptions()...)
		return &workHub{st: st, svc: svc, signals: signals, conn: conn, client: pb.NewTaskHubSidecarServiceClient(conn)}
	}
	a, b := open(), open()
	sb, dropB := b.openStream(t, filters([]string{"Seq"}, []string{"Act"}))
	a.start(t, "Seq", "pg-one")
	item := next(t, sb)
	if item.GetOrchestratorRequest().GetInstanceId() != "pg-one" {
		t.Fatalf("the stream on server B got %v, want the turn started on server A", item)
	}
	if _, err := b.client.CompleteOrchestratorTask(callContext(t), &pb.OrchestratorResponse{InstanceId: "pg-one", CompletionToken: item.CompletionToken,
		Actions: []*pb.OrchestratorAction{scheduleTask(0, "Act", `"x"`)}}); err != nil {
		t.Fatal(err)
	}
	item = next(t, sb)
	if _, err := b.client.CompleteActivityTask(callContext(t), &pb.ActivityResponse{InstanceId: "pg-one", TaskId: item.GetActivityRequest().GetTaskId(),
		Result: wrapperspb.String(`"done"`), CompletionToken: item.CompletionToken}); err != nil {
		t.Fatal(err)
	}
	item = next(t, sb) // the turn with the result: dropped while held
	if item.GetOrchestratorRequest().GetInstanceId() != "pg-one" {
		t.Fatalf("got %v, want the turn with the activity's result", item)
	}
	dropB()
	sa, _ := a.openStream(t, filters([]string{"Seq"}, []string{"Act"}))
	item = next(t, sa)
	req := item.GetOrchestratorRequest()
	if req.GetInstanceId() != "pg-one" || len(req.NewEvents) < 2 || req.NewEvents[1].GetTaskCompleted().GetResult().GetValue() != `"done"` {
		t.Fatalf("the stream on server A got %v, want the turn B held", item)
	}
	if _, err := a.client.CompleteOrchestratorTask(callContext(t), &pb.OrchestratorResponse{InstanceId: "pg-one", CompletionToken: item.CompletionToken,
		Actions: []*pb.OrchestratorAction{completeWith(1, pb.OrchestrationStatus_ORCHESTRATION_STATUS_COMPLETED, `"ok"`)}}); err != nil {
		t.Fatal(err)
	}
	if st := b.wait(t, "pg-one"); st.OrchestrationStatus != pb.OrchestrationStatus_ORCHESTRATION_STATUS_COMPLETED || st.Output.GetValue() != `"ok"` {
		t.Errorf("the instance, read on server B: %v, want COMPLETED", st)
	}
}

// TestWorkerCommitsFailing fails the store under a worker stream: a turn's commit fails once
// before it is applied (the engine retries it, and the completion answers OK), and an activity's
// completion is applied and its reply lost (the retry finds the lease gone: NOT_FOUND, though
// the result counts). The instance completes, and no work item is delivered twice.
func TestWorkerCommitsFailing(t *testing.T) {
	var faulty *storefault.Store
	h := serveWork(t, func(w *Work) {
		faulty = storefault.Wrap(w.Store)
		faulty.Fail(storefault.Fault{Method: "CommitEpisode", Times: 1})
		faulty.Fail(storefault.Fault{Method: "CompleteActivity", After: true, Times: 1})
		w.Store = faulty
	})
	s, _ := h.openStream(t, filters([]string{"Seq"}, []string{"Act"}))
	h.start(t, "Seq", "one")
	item := next(t, s)
	if _, err := h.client.CompleteOrchestratorTask(callContext(t), &pb.OrchestratorResponse{InstanceId: "one", CompletionToken: item.CompletionToken,
		Actions: []*pb.OrchestratorAction{scheduleTask(0, "Act", `1`)}}); err != nil {
		t.Fatalf("a turn whose first commit failed before it was applied: %v, want OK after the retry", err)
	}
	item = next(t, s)
	if item.GetActivityRequest() == nil {
		t.Fatalf("got %v, want the activity (once)", item)
	}
	_, err := h.client.CompleteActivityTask(callContext(t), &pb.ActivityResponse{InstanceId: "one", TaskId: 0,
		Result: wrapperspb.String(`"r"`), CompletionToken: item.CompletionToken})
	wantCode(t, "an activity completion applied with its reply lost", err, codes.NotFound)
	item = next(t, s)
	req := item.GetOrchestratorRequest()
	if req == nil || req.NewEvents[1].GetTaskCompleted().GetResult().GetValue() != `"r"` {
		t.Fatalf("got %v, want the turn with the activity's result (the activity not delivered again)", item)
	}
	if _, err := h.client.CompleteOrchestratorTask(callContext(t), &pb.OrchestratorResponse{InstanceId: "one", CompletionToken: item.CompletionToken,
		Actions: []*pb.OrchestratorAction{completeWith(1, pb.OrchestrationStatus_ORCHESTRATION_STATUS_COMPLETED, `"ok"`)}}); err != nil {
		t.Fatal(err)
	}
	if st := h.wait(t, "one"); st.OrchestrationStatus != pb.OrchestrationStatus_ORCHESTRATION_STATUS_COMPLETED {
		t.Errorf("final state %v, want COMPLETED", st)
	}
	if faulty.Failed("CommitEpisode") != 1 || faulty.Failed("CompleteActivity") != 1 {
		t.Errorf("faults used: CommitEpisode %d, CompleteActivity %d; want 1 each", faulty.Failed("CommitEpisode"), faulty.Failed("CompleteActivity"))
	}
}

// TestWorkerGetsParentTraceContext: the caller's W3C context of CreateInstanceRequest reaches
// the worker on ExecutionStarted and, when the worker's scheduleTask carries none of its own
// (the Go SDK's case), as the ActivityRequest's parentTraceContext; a worker's own context wins.
func TestWorkerGetsParentTraceContext(t *testing.T) {
	const caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	const workers = "00-4bf92f3577b34da6a3ce929d0e0e4736-1111111111111111-01"
	h := serveWork(t, nil)
	s, _ := h.openStream(t, filters([]string{"Seq"}, []string{"Act"}))
	if _, err := h.client.StartInstance(callContext(t), &pb.CreateInstanceRequest{Name: "Seq", InstanceId: "traced",
		ParentTraceContext: &pb.TraceContext{TraceParent: caller, TraceState: wrapperspb.String("k=v")}}); err != nil {
		t.Fatal(err)
	}
	item := next(t, s)
	req := item.GetOrchestratorRequest()
	if st := req.GetNewEvents()[1].GetExecutionStarted(); st.GetParentTraceContext().GetTraceParent() != caller ||
		st.GetParentTraceContext().GetTraceState().GetValue() != "k=v" {
		t.Fatalf("executionStarted parentTraceContext %v, want the caller's", st.GetParentTraceContext())
	}
	own := scheduleTask(1, "Act", `"b"`)
	own.GetScheduleTask().ParentTraceContext = &pb.TraceContext{TraceParent: workers}
	if _, err := h.client.CompleteOrchestratorTask(callContext(t), &pb.OrchestratorResponse{InstanceId: "traced", CompletionToken: item.CompletionToken,
		Actions: []*pb.OrchestratorAction{scheduleTask(0, "Act", `"a"`), own}}); err != nil {
		t.Fatal(err)
	}
	got := map[int32]string{}
	for range 2 {
		act := next(t, s).GetActivityRequest()
		if act == nil {
			t.Fatal("want the two activity requests")
		}
		got[act.TaskId] = act.GetParentTraceContext().GetTraceParent()
	}
	if got[0] != caller || got[1] != workers {
		t.Errorf("activity parentTraceContexts %v, want task 0 the caller's %s and task 1 the worker's %s", got, caller, workers)
	}
}

// The orchestration span a worker reports (OrchestratorResponse.orchestrationTraceContext) is
// kept in the history and handed back in the execution's later turns, so that a JS or .NET
// worker keeps one span ID and start across them; a malformed one is not kept.
func TestWorkerOrchestrationTraceContextEchoed(t *testing.T) {
	h := serveWork(t, nil)
	s, _ := h.openStream(t, filters([]string{"Seq"}, []string{"Act"}))
	h.start(t, "Seq", "spans")
	const spanID = "b7ad6b7169203331"
	start := time.Date(2026, 12, 2, 13, 0, 0, 123456789, time.UTC)
	good := &pb.OrchestrationTraceContext{SpanID: wrapperspb.String(spanID), SpanStartTime: timestamppb.New(start)}

	// turn answers the next orchestrator request with actions and the trace context tc, and
	// returns the request's trace context; the activity it schedules is completed at once.
	turn := func(tc *pb.OrchestrationTraceContext, actions ...*pb.OrchestratorAction) *pb.OrchestrationTraceContext {
		t.Helper()
		item := next(t, s)
		req := item.GetOrchestratorRequest()
		if req == nil {
			t.Fatalf("item %v, want an orchestrator request", item)
		}
		if _, err := h.client.CompleteOrchestratorTask(callContext(t), &pb.OrchestratorResponse{InstanceId: "spans",
			CompletionToken: item.CompletionToken, Actions: actions, OrchestrationTraceContext: tc}); err != nil {
			t.Fatalf("CompleteOrchestratorTask: %v", err)
		}
		if len(actions) > 0 && actions[0].GetScheduleTask() != nil {
			act := next(t, s)
			if _, err := h.client.CompleteActivityTask(callContext(t), &pb.ActivityResponse{InstanceId: "spans",
				TaskId: act.GetActivityRequest().GetTaskId(), Result: wrapperspb.String(`"ok"`), CompletionToken: act.CompletionToken}); err != nil {
				t.Fatalf("CompleteActivityTask: %v", err)
			}
		}
		return req.OrchestrationTraceContext
	}
	for i, bad := range []*pb.OrchestrationTraceContext{
		{SpanID: wrapperspb.String("not a span id!!!")},
		{SpanID: wrapperspb.String(strings.Repeat("a", 1<<16))},
		{SpanID: wrapperspb.String("0000000000000000")},
		{SpanID: wrapperspb.String(spanID), SpanStartTime: &timestamppb.Timestamp{Seconds: 1 << 62}},
	} {
		if got := turn(bad, scheduleTask(int32(i), "Act", `"x"`)); got != nil {
			t.Fatalf("turn %d got trace context %v before any valid one was reported", i, got)
		}
	}
	if got := turn(good, scheduleTask(4, "Act", `"x"`)); got != nil {
		t.Fatalf("got trace context %v before it was reported", got)
	}
	for i := range 2 { // reported again, unchanged: nothing new is stored
		got := turn(good, scheduleTask(int32(5+i), "Act", `"x"`))
		if got.GetSpanID().GetValue() != spanID || !got.GetSpanStartTime().AsTime().Equal(start) {
			t.Fatalf("turn %d: trace context %v, want span %s started %v", 6+i, got, spanID, start)
		}
	}
	if got := turn(nil, completeWith(7, pb.OrchestrationStatus_ORCHESTRATION_STATUS_COMPLETED, `"done"`)); got.GetSpanID().GetValue() != spanID {
		t.Fatalf("last turn: trace context %v, want span %s", got, spanID)
	}
	if st := h.wait(t, "spans"); st.OrchestrationStatus != pb.OrchestrationStatus_ORCHESTRATION_STATUS_COMPLETED {
		t.Fatalf("final state %v", st)
	}
	chunks, err := h.st.History(callContext(t), "spans")
	if err != nil {
		t.Fatal(err)
	}
	evs, err := history.DecodeAll(chunks)
	if err != nil {
		t.Fatal(err)
	}
	var kept int
	for _, ev := range evs {
		if ev.WorkerSpan != nil {
			kept++
			if ev.Type != history.OrchestratorStarted || ev.WorkerSpan.SpanID != spanID {
				t.Errorf("worker span kept on %v: %+v", ev.Type, ev.WorkerSpan)
			}
		}
	}
	if kept != 1 {
		t.Errorf("the worker span is kept %d times in the history, want once", kept)
	}
}

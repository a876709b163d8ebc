package grpcapi

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/reprise-dev/reprise"
	"github.com/reprise-dev/reprise/internal/control"
	"github.com/reprise-dev/reprise/internal/engine"
	"github.com/reprise-dev/reprise/internal/grpcapi/pb"
	"github.com/reprise-dev/reprise/internal/history"
	"github.com/reprise-dev/reprise/internal/pgtest"
	"github.com/reprise-dev/reprise/store"
	"github.com/reprise-dev/reprise/store/postgres"
	"github.com/reprise-dev/reprise/store/sqlite"
)

// These tests drive the entity RPCs and work items with the protocol's messages; the SDKs' own
// entities run in the interop tests (cmd/reprise, TestInteropDurableTaskJSEntities).

// entityFilters names the entities (and orchestrators) a test worker runs, and no activities.
func entityFilters(orchestrators []string, entities ...string) *pb.WorkItemFilters {
	if len(orchestrators) == 0 {
		orchestrators = []string{rejectAll}
	}
	f := filters(orchestrators, []string{rejectAll})
	for _, n := range entities {
		f.Entities = append(f.Entities, &pb.EntityFilter{Name: n})
	}
	return f
}

// nextBatch returns the next work item, which must be an entity batch.
func nextBatch(t *testing.T, s grpc.ServerStreamingClient[pb.WorkItem]) *pb.WorkItem {
	t.Helper()
	item := next(t, s)
	if item.GetEntityRequestV2() == nil && item.GetEntityRequest() == nil {
		t.Fatalf("got %v, want an entity work item", item)
	}
	return item
}

func (h *workHub) signal(t *testing.T, id, op, input string) {
	t.Helper()
	r := &pb.SignalEntityRequest{InstanceId: id, Name: op, RequestId: control.NewGUID()}
	if input != "" {
		r.Input = wrapperspb.String(input)
	}
	if _, err := h.client.SignalEntity(callContext(t), r); err != nil {
		t.Fatalf("SignalEntity %s %s: %v", id, op, err)
	}
}

func (h *workHub) entity(t *testing.T, id string) *pb.GetEntityResponse {
	t.Helper()
	r, err := h.client.GetEntity(callContext(t), &pb.GetEntityRequest{InstanceId: id, IncludeState: true})
	if err != nil {
		t.Fatalf("GetEntity %s: %v", id, err)
	}
	return r
}

// completeBatch answers a batch with one success per result and the state.
func (h *workHub) completeBatch(t *testing.T, item *pb.WorkItem, state string, results ...string) {
	t.Helper()
	r := &pb.EntityBatchResult{CompletionToken: item.CompletionToken}
	if state != "" {
		r.EntityState = wrapperspb.String(state)
	}
	for _, res := range results {
		r.Results = append(r.Results, success(res))
	}
	if _, err := h.client.CompleteEntityTask(callContext(t), r); err != nil {
		t.Fatalf("CompleteEntityTask: %v", err)
	}
}

func success(result string) *pb.OperationResult {
	s := &pb.OperationResultSuccess{StartTimeUtc: timestamppb.Now(), EndTimeUtc: timestamppb.Now()}
	if result != "" {
		s.Result = wrapperspb.String(result)
	}
	return &pb.OperationResult{ResultType: &pb.OperationResult_Success{Success: s}}
}

// ops returns the operations of a V2 batch as "op(input)" for signals and "call op(input) from
// caller" for calls.
func ops(t *testing.T, item *pb.WorkItem) []string {
	t.Helper()
	var out []string
	for _, e := range item.GetEntityRequestV2().GetOperationRequests() {
		switch {
		case e.GetEntityOperationSignaled() != nil:
			s := e.GetEntityOperationSignaled()
			if s.RequestId == "" {
				t.Errorf("signal %v without a request ID", s)
			}
			out = append(out, s.Operation+"("+s.GetInput().GetValue()+")")
		case e.GetEntityOperationCalled() != nil:
			c := e.GetEntityOperationCalled()
			if c.RequestId == "" || c.GetParentExecutionId().GetValue() == "" {
				t.Errorf("call %v without a request ID or the caller's execution", c)
			}
			out = append(out, "call "+c.Operation+"("+c.GetInput().GetValue()+") from "+c.GetParentInstanceId().GetValue())
		default:
			t.Errorf("operation request %v is neither a signal nor a call", e)
		}
	}
	return out
}

// TestEntityBatches runs signals through entity work items (entityRequestV2): a batch of two,
// answered with one result (the other runs in the next batch, on the new state), and checks
// the state, stale and empty tokens, and a completion for the wrong kind of item.
func TestEntityBatches(t *testing.T) {
	h := serveWork(t, nil)
	h.signal(t, "@Counter@A", "add", "1") // the name is lower-cased, the key kept
	h.signal(t, "@counter@A", "add", "2")
	s, _ := h.openStream(t, entityFilters(nil, "Counter"))

	first := nextBatch(t, s)
	req := first.GetEntityRequestV2()
	if req.GetInstanceId() != "@counter@A" || req.EntityState != nil {
		t.Fatalf("first batch %v, want @counter@A without state", req)
	}
	if got := ops(t, first); !slices.Equal(got, []string{"add(1)", "add(2)"}) {
		t.Fatalf("first batch runs %q, want both signals in order", got)
	}
	// A completion of the wrong kind leaves the batch waiting.
	_, err := h.client.CompleteOrchestratorTask(callContext(t), &pb.OrchestratorResponse{CompletionToken: first.CompletionToken})
	wantCode(t, "an orchestrator completion with an entity batch's token", err, codes.InvalidArgument)
	h.completeBatch(t, first, "1", "")

	second := nextBatch(t, s)
	if got := ops(t, second); !slices.Equal(got, []string{"add(2)"}) || second.GetEntityRequestV2().GetEntityState().GetValue() != "1" {
		t.Fatalf("second batch %v, want the operation without a result, on state 1", second)
	}
	h.completeBatch(t, second, "3", "")

	_, err = h.client.CompleteEntityTask(callContext(t), &pb.EntityBatchResult{CompletionToken: second.CompletionToken, Results: []*pb.OperationResult{success("")}})
	wantCode(t, "a completion with a used token", err, codes.NotFound)
	_, err = h.client.CompleteEntityTask(callContext(t), &pb.EntityBatchResult{Results: []*pb.OperationResult{success("")}})
	wantCode(t, "a completion without a token", err, codes.InvalidArgument)
	_, err = h.client.AbandonTaskEntityWorkItem(callContext(t), &pb.AbandonEntityTaskRequest{CompletionToken: "forged"})
	wantCode(t, "an abandon with a forged token", err, codes.NotFound)

	got := h.entity(t, "@counter@A")
	if !got.Exists || got.Entity.GetSerializedState().GetValue() != "3" || got.Entity.BacklogQueueSize != 0 || got.Entity.LockedBy != nil {
		t.Errorf("GetEntity %v, want state 3, no backlog, no lock", got)
	}
	if h.svc.dispatched.size() != 0 {
		t.Errorf("%d items still waiting after every batch was answered", h.svc.dispatched.size())
	}
}

// TestEntityBatchesV1 sends batches as entityRequest (EntityBatchRequest) when the hub says so.
func TestEntityBatchesV1(t *testing.T) {
	h := serveWork(t, func(w *Work) { w.EntityRequestsV1 = true })
	h.signal(t, "@counter@x", "add", "5")
	s, _ := h.openStream(t, entityFilters(nil, "counter"))
	item := nextBatch(t, s)
	req := item.GetEntityRequest()
	if req.GetInstanceId() != "@counter@x" || len(req.GetOperations()) != 1 {
		t.Fatalf("got %v, want an EntityBatchRequest for @counter@x with one operation", item)
	}
	if op := req.Operations[0]; op.Operation != "add" || op.GetInput().GetValue() != "5" || op.RequestId == "" {
		t.Errorf("operation %v, want add(5) with its request ID", op)
	}
	h.completeBatch(t, item, "5", "")
	if got := h.entity(t, "@counter@x"); got.Entity.GetSerializedState().GetValue() != "5" {
		t.Errorf("GetEntity %v, want state 5", got)
	}
}

// TestEntityBatchGiveBacks gives a batch back in each way a worker can (a batch failure without
// results, an abandon, the stream's end) and checks that it is handed out again each time, with
// a new token, the old one answering NOT_FOUND; an unregistered entity makes the stream leave
// it to others.
func TestEntityBatchGiveBacks(t *testing.T) {
	h := serveWork(t, nil)
	h.signal(t, "@counter@g", "add", "1")
	s1, drop1 := h.openStream(t, entityFilters(nil, "counter"))
	item := nextBatch(t, s1)

	if _, err := h.client.CompleteEntityTask(callContext(t), &pb.EntityBatchResult{CompletionToken: item.CompletionToken,
		FailureDetails: &pb.TaskFailureDetails{ErrorType: "Error", ErrorMessage: "framework failure"}}); err != nil {
		t.Fatalf("a batch failure: %v", err)
	}
	again := nextBatch(t, s1)
	if got := ops(t, again); again.CompletionToken == item.CompletionToken || !slices.Equal(got, []string{"add(1)"}) {
		t.Fatalf("after a batch failure got %v, want the batch again with a new token", again)
	}

	if _, err := h.client.AbandonTaskEntityWorkItem(callContext(t), &pb.AbandonEntityTaskRequest{CompletionToken: again.CompletionToken}); err != nil {
		t.Fatalf("abandon: %v", err)
	}
	third := nextBatch(t, s1)
	if got := ops(t, third); !slices.Equal(got, []string{"add(1)"}) {
		t.Fatalf("after an abandon got %v, want the batch again", third)
	}

	drop1()
	s2, _ := h.openStream(t, entityFilters(nil, "counter"))
	fourth := nextBatch(t, s2)
	if got := ops(t, fourth); !slices.Equal(got, []string{"add(1)"}) {
		t.Fatalf("on a new stream got %v, want the dropped stream's batch", fourth)
	}
	_, err := h.client.CompleteEntityTask(callContext(t), &pb.EntityBatchResult{CompletionToken: third.CompletionToken, Results: []*pb.OperationResult{success("")}})
	wantCode(t, "a completion on the dropped stream's token", err, codes.NotFound)

	// The JS SDK's answer for an entity it has not registered: the stream gives the batch back
	// and stops claiming the name.
	notFound := &pb.OperationResult{ResultType: &pb.OperationResult_Failure{Failure: &pb.OperationResultFailure{
		FailureDetails: &pb.TaskFailureDetails{ErrorType: "EntityTaskNotFound", ErrorMessage: "No entity task named 'counter' was found.", IsNonRetriable: true}}}}
	if _, err := h.client.CompleteEntityTask(callContext(t), &pb.EntityBatchResult{CompletionToken: fourth.CompletionToken,
		Results: []*pb.OperationResult{notFound}}); err != nil {
		t.Fatalf("EntityTaskNotFound: %v", err)
	}
	s3, _ := h.openStream(t, entityFilters(nil, "counter"))
	fifth := nextBatch(t, s3)
	h.completeBatch(t, fifth, "1", "")
	if got := h.entity(t, "@counter@g"); got.Entity.GetSerializedState().GetValue() != "1" || got.Entity.BacklogQueueSize != 0 {
		t.Errorf("GetEntity %v, want state 1 and no backlog: the operation ran once, on the stream that runs it", got)
	}
}

// TestEntityResults checks what a batch's answer does: a failed operation rolls nothing back
// here (the worker did), a deleted state makes the entity not exist, the operations' signals and
// orchestration starts are sent, and an invalid answer fails the operations and keeps the state.
func TestEntityResults(t *testing.T) {
	h := serveWork(t, nil)
	h.signal(t, "@counter@r", "set", "7")
	s, _ := h.openStream(t, entityFilters([]string{"Started"}, "counter", "other"))
	item := nextBatch(t, s)
	r := &pb.EntityBatchResult{CompletionToken: item.CompletionToken, EntityState: wrapperspb.String("7"),
		Results: []*pb.OperationResult{success("")},
		Actions: []*pb.OperationAction{
			{Id: 0, OperationActionType: &pb.OperationAction_SendSignal{SendSignal: &pb.SendSignalAction{
				InstanceId: "@other@b", Name: "ping", Input: wrapperspb.String(`"hi"`)}}},
			{Id: 1, OperationActionType: &pb.OperationAction_StartNewOrchestration{StartNewOrchestration: &pb.StartNewOrchestrationAction{
				InstanceId: "started-1", Name: "Started", Input: wrapperspb.String(`3`)}}},
		}}
	if _, err := h.client.CompleteEntityTask(callContext(t), r); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for len(got) < 2 {
		item := next(t, s)
		switch {
		case item.GetOrchestratorRequest() != nil:
			if id := item.GetOrchestratorRequest().InstanceId; id != "started-1" {
				t.Fatalf("orchestrator request for %q, want the started instance", id)
			}
			got["start"] = true
			if _, err := h.client.CompleteOrchestratorTask(callContext(t), &pb.OrchestratorResponse{CompletionToken: item.CompletionToken,
				Actions: []*pb.OrchestratorAction{completeWith(0, pb.OrchestrationStatus_ORCHESTRATION_STATUS_COMPLETED, `"done"`)}}); err != nil {
				t.Fatal(err)
			}
		case item.GetEntityRequestV2().GetInstanceId() == "@other@b":
			if o := ops(t, item); !slices.Equal(o, []string{`ping("hi")`}) {
				t.Fatalf("@other@b runs %q, want the signal", o)
			}
			got["signal"] = true
			// null state: the entity does not exist afterwards (it was deleted).
			h.completeBatch(t, item, "null", "")
		default:
			t.Fatalf("unexpected item %v", item)
		}
	}
	if st := h.wait(t, "started-1"); st.GetInput().GetValue() != "3" {
		t.Errorf("started orchestration %v, want input 3", st)
	}
	if e := h.entity(t, "@other@b"); e.Exists || e.Entity.GetSerializedState() != nil {
		t.Errorf("GetEntity @other@b %v, want exists=false: its state was deleted", e)
	}

	// Invalid: a state that is not JSON. The operation fails, the state stays 7.
	h.signal(t, "@counter@r", "set", "8")
	bad := nextBatch(t, s)
	_, err := h.client.CompleteEntityTask(callContext(t), &pb.EntityBatchResult{CompletionToken: bad.CompletionToken,
		EntityState: wrapperspb.String("not json"), Results: []*pb.OperationResult{success("")}})
	wantCode(t, "a batch with a non-JSON state", err, codes.InvalidArgument)
	if e := h.entity(t, "@counter@r"); e.Entity.GetSerializedState().GetValue() != "7" || e.Entity.BacklogQueueSize != 0 {
		t.Errorf("after an invalid answer GetEntity %v, want state 7 kept and the operation taken", e)
	}
}

// TestEntityQueries checks GetEntity, QueryEntities (prefixes as the SDKs send them and not,
// transient entities, state, paging, time bounds) and CleanEntityStorage's answers, and the
// refusals of bad arguments.
func TestEntityQueries(t *testing.T) {
	h := serveWork(t, nil)
	s, _ := h.openStream(t, entityFilters(nil, "counter", "other"))
	for _, id := range []string{"@counter@a", "@counter@b", "@other@Xy"} {
		h.signal(t, id, "set", "1")
		h.completeBatch(t, nextBatch(t, s), `{"v":1}`, "")
	}
	h.signal(t, "@counter@gone", "delete", "")
	h.completeBatch(t, nextBatch(t, s), "", "")

	if e := h.entity(t, "@counter@never"); e.Exists || e.Entity != nil {
		t.Errorf("GetEntity of an unknown entity: %v, want exists=false", e)
	}
	e, err := h.client.GetEntity(callContext(t), &pb.GetEntityRequest{InstanceId: "@counter@a"})
	if err != nil || !e.Exists || e.Entity.SerializedState != nil || e.Entity.LastModifiedTime == nil {
		t.Errorf("GetEntity without state: %v %v, want exists, a last-modified time and no state", e, err)
	}
	_, err = h.client.GetEntity(callContext(t), &pb.GetEntityRequest{InstanceId: "counter"})
	wantCode(t, "GetEntity of a non-entity ID", err, codes.InvalidArgument)

	query := func(q *pb.EntityQuery) ([]string, string) {
		t.Helper()
		r, err := h.client.QueryEntities(callContext(t), &pb.QueryEntitiesRequest{Query: q})
		if err != nil {
			t.Fatalf("QueryEntities %v: %v", q, err)
		}
		var ids []string
		for _, e := range r.Entities {
			id := e.InstanceId
			if q.IncludeState {
				id += "=" + e.GetSerializedState().GetValue()
			}
			ids = append(ids, id)
		}
		slices.Sort(ids)
		return ids, r.GetContinuationToken().GetValue()
	}
	prefix := wrapperspb.String
	for _, tc := range []struct {
		q    *pb.EntityQuery
		want []string
	}{
		{&pb.EntityQuery{}, []string{"@counter@a", "@counter@b", "@other@Xy"}},
		{&pb.EntityQuery{IncludeTransient: true}, []string{"@counter@a", "@counter@b", "@counter@gone", "@other@Xy"}},
		{&pb.EntityQuery{InstanceIdStartsWith: prefix("@counter@")}, []string{"@counter@a", "@counter@b"}},
		{&pb.EntityQuery{InstanceIdStartsWith: prefix("Counter")}, []string{"@counter@a", "@counter@b"}}, // as the SDKs normalize it
		{&pb.EntityQuery{InstanceIdStartsWith: prefix("@OTHER@X")}, []string{"@other@Xy"}},
		{&pb.EntityQuery{InstanceIdStartsWith: prefix("@other@x")}, nil}, // keys keep their case
		{&pb.EntityQuery{InstanceIdStartsWith: prefix("@counter@a"), IncludeState: true}, []string{`@counter@a={"v":1}`}},
		{&pb.EntityQuery{LastModifiedFrom: timestamppb.New(time.Now().Add(time.Hour))}, nil},
		{&pb.EntityQuery{LastModifiedTo: timestamppb.New(time.Now().Add(time.Hour))}, []string{"@counter@a", "@counter@b", "@other@Xy"}},
	} {
		if got, next := query(tc.q); !slices.Equal(got, tc.want) || next != "" {
			t.Errorf("QueryEntities %v: %q (next %q), want %q on one page", tc.q, got, next, tc.want)
		}
	}
	var paged []string
	token := ""
	for pages := 0; ; pages++ {
		q := &pb.EntityQuery{PageSize: wrapperspb.Int32(2)}
		if token != "" {
			q.ContinuationToken = wrapperspb.String(token)
		}
		ids, next := query(q)
		if len(ids) > 2 || pages > 3 {
			t.Fatalf("page %d holds %q: more than the page size, or too many pages", pages, ids)
		}
		paged = append(paged, ids...)
		if token = next; token == "" {
			break
		}
	}
	slices.Sort(paged)
	if !slices.Equal(paged, []string{"@counter@a", "@counter@b", "@other@Xy"}) {
		t.Errorf("pages of 2 hold %q, want every entity once", paged)
	}
	_, err = h.client.QueryEntities(callContext(t), &pb.QueryEntitiesRequest{Query: &pb.EntityQuery{PageSize: wrapperspb.Int32(-1)}})
	wantCode(t, "QueryEntities with a negative page size", err, codes.InvalidArgument)
	_, err = h.client.QueryEntities(callContext(t), &pb.QueryEntitiesRequest{Query: &pb.EntityQuery{ContinuationToken: wrapperspb.String("forged")}})
	wantCode(t, "QueryEntities with a forged token", err, codes.InvalidArgument)

	// The deleted entity is empty but not idle for the reorder window yet: nothing is removed.
	c, err := h.client.CleanEntityStorage(callContext(t), &pb.CleanEntityStorageRequest{RemoveEmptyEntities: true, ReleaseOrphanedLocks: true})
	if err != nil || c.EmptyEntitiesRemoved != 0 || c.OrphanedLocksReleased != 0 || c.ContinuationToken != nil {
		t.Errorf("CleanEntityStorage: %v %v, want nothing removed or released, on one page", c, err)
	}
	if ids, _ := query(&pb.EntityQuery{IncludeTransient: true, InstanceIdStartsWith: prefix("@counter@gone")}); len(ids) != 1 {
		t.Errorf("after cleaning, the recently deleted entity is listed %d times, want once", len(ids))
	}
	_, err = h.client.SignalEntity(callContext(t), &pb.SignalEntityRequest{InstanceId: "@counter@a", Name: "add", Input: wrapperspb.String("not json")})
	wantCode(t, "SignalEntity with a non-JSON input", err, codes.InvalidArgument)
	_, err = h.client.SignalEntity(callContext(t), &pb.SignalEntityRequest{InstanceId: "counter-a", Name: "add"})
	wantCode(t, "SignalEntity of a non-entity ID", err, codes.InvalidArgument)
}

// TestOrphanedLockCleaned gives an entity a lock whose orchestration does not exist, and checks
// that CleanEntityStorage releases it and that the operations queued behind it then run.
func TestOrphanedLockCleaned(t *testing.T) {
	h := serveWork(t, nil)
	s, _ := h.openStream(t, entityFilters(nil, "counter"))
	lock := history.New(history.EntityLockRequested, time.Now().UTC())
	lock.RequestID, lock.LockSet = control.NewGUID(), []string{"@counter@o"}
	lock.Parent = &history.Parent{InstanceID: "ghost", ExecutionID: "x1"}
	m, err := control.Message("@counter@o", "", lock)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.st.SendEntityMessages(context.Background(), []store.Message{m}); err != nil {
		t.Fatal(err)
	}
	h.signal(t, "@counter@o", "add", "1") // waits behind the lock
	waitEntity(t, h, "@counter@o", func(e *pb.EntityMetadata) bool {
		return e.GetLockedBy().GetValue() == "ghost" && e.BacklogQueueSize == 1
	})
	// Listings without state show the lock and the backlog too.
	q, err := h.client.QueryEntities(callContext(t), &pb.QueryEntitiesRequest{Query: &pb.EntityQuery{IncludeTransient: true}})
	if err != nil || len(q.Entities) != 1 || q.Entities[0].GetLockedBy().GetValue() != "ghost" || q.Entities[0].BacklogQueueSize != 1 {
		t.Errorf("QueryEntities: %v %v, want the entity locked by ghost with one operation queued", q, err)
	}
	c, err := h.client.CleanEntityStorage(callContext(t), &pb.CleanEntityStorageRequest{ReleaseOrphanedLocks: true})
	if err != nil || c.OrphanedLocksReleased != 1 {
		t.Fatalf("CleanEntityStorage: %v %v, want one orphaned lock released", c, err)
	}
	item := nextBatch(t, s)
	if got := ops(t, item); !slices.Equal(got, []string{"add(1)"}) {
		t.Fatalf("after the release got %q, want the queued signal", got)
	}
	h.completeBatch(t, item, "1", "")
	if e := h.entity(t, "@counter@o"); e.Entity.LockedBy != nil || e.Entity.BacklogQueueSize != 0 {
		t.Errorf("GetEntity %v, want no lock and no backlog", e)
	}
}

// waitEntity reads the entity until ok holds, woken by the store's change signal of the entity.
func waitEntity(t *testing.T, h *workHub, id string, ok func(*pb.EntityMetadata) bool) *pb.EntityMetadata {
	t.Helper()
	ctx := callContext(t)
	for {
		changed, stop := h.st.WatchInstance(id)
		e, err := h.client.GetEntity(ctx, &pb.GetEntityRequest{InstanceId: id, IncludeState: true})
		if err == nil && e.Entity != nil && ok(e.Entity) {
			stop()
			return e.Entity
		}
		select {
		case <-changed:
		case <-time.After(time.Second): // a commit of another writer sends no signal here; read again
		case <-ctx.Done():
			stop()
			t.Fatalf("entity %s is %v (%v), not yet as the test waits for", id, e, err)
		}
		stop()
	}
}

// TestEntityStreamDropUnderLock is the failure of DTS388 (docs/grpc.md): a worker's stream drops
// in the middle of an entity batch while the entity is locked by a critical section and has a
// signal queued behind the lock. The batch is handed out again on the next stream, the old
// token is refused, the critical section goes on, its lock is released, and the queued signal
// runs: nothing is left queued, locked or in flight. A Go orchestration (an App on the same
// store) holds the lock.
func TestEntityStreamDropUnderLock(t *testing.T) {
	for _, how := range []string{"drop", "abandon"} {
		t.Run(how, func(t *testing.T) {
			h := serveWork(t, nil)
			streamDropUnderLock(t, how, h, h)
		})
	}
}

// TestEntitiesOnPostgres runs TestEntityStreamDropUnderLock across two servers on one PostgreSQL
// database: the batch dropped on a stream of one server goes to a stream of the other.
func TestEntitiesOnPostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	open := func() *workHub {
		st, err := postgres.Open(context.Background(), dsn, postgres.Options{Hub: "default"})
		if err != nil {
			t.Fatal(err)
		}
		signals := engine.NewSignals(st)
		t.Cleanup(func() { signals.Close(); st.Close() })
		svc := NewService(Hub{Name: "default", Plane: control.New(st, control.Options{Hub: "default"}),
			Work: &Work{Store: st, Signals: signals, LeaseDuration: time.Hour, AbandonDelay: time.Millisecond, Logger: slog.New(slog.DiscardHandler)}})
		conn := serveService(t, svc, ServerOptions()...)
		return &workHub{st: st, svc: svc, signals: signals, conn: conn, client: pb.NewTaskHubSidecarServiceClient(conn)}
	}
	streamDropUnderLock(t, "drop", open(), open())
}

// streamDropUnderLock is TestEntityStreamDropUnderLock: the batch is held on a stream of first;
// dropped, it goes to a stream of second; abandoned, to the same stream.
func streamDropUnderLock(t *testing.T, how string, first, second *workHub) {
	h := first
	counter := reprise.EntityID{Name: "counter", Key: "k"}
	locker := reprise.NewOrchestrator("Locker", func(ctx *reprise.OrchestrationContext, _ reprise.None) (int, error) {
		cs, err := ctx.LockEntities(counter)
		if err != nil {
			return 0, err
		}
		defer cs.Release()
		if _, err := reprise.WaitForEvent[reprise.None](ctx, "go", 0).Await(); err != nil {
			return 0, err
		}
		return reprise.CallEntity[int](ctx, counter, "add", 1).Await()
	})
	app := reprise.NewApp(reprise.WithStore(h.st), reprise.WithLogger(slog.New(slog.DiscardHandler)))
	app.Register(locker)
	if err := app.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = app.Shutdown(context.Background()) })

	s1, drop1 := h.openStream(t, entityFilters(nil, "counter"))
	if _, err := app.Client().StartNew(callContext(t), "Locker", reprise.None{}, reprise.WithInstanceID("locker")); err != nil {
		t.Fatal(err)
	}
	waitEntity(t, h, counter.String(), func(e *pb.EntityMetadata) bool { return e.GetLockedBy().GetValue() == "locker" })
	h.signal(t, counter.String(), "add", "10")
	waitEntity(t, h, counter.String(), func(e *pb.EntityMetadata) bool { return e.BacklogQueueSize == 1 })
	if err := app.Client().RaiseEvent(callContext(t), "locker", "go", reprise.None{}); err != nil {
		t.Fatal(err)
	}
	held := nextBatch(t, s1)
	if got := ops(t, held); !slices.Equal(got, []string{"call add(1) from locker"}) {
		t.Fatalf("under the lock the batch runs %q, want only the holder's call", got)
	}

	s2 := s1
	if how == "drop" {
		drop1()
		h = second
		s2, _ = h.openStream(t, entityFilters(nil, "counter"))
	} else if _, err := h.client.AbandonTaskEntityWorkItem(callContext(t), &pb.AbandonEntityTaskRequest{CompletionToken: held.CompletionToken}); err != nil {
		t.Fatal(err)
	}
	again := nextBatch(t, s2)
	if got := ops(t, again); !slices.Equal(got, []string{"call add(1) from locker"}) {
		t.Fatalf("redelivered batch runs %q, want the holder's call again", got)
	}
	_, err := first.client.CompleteEntityTask(callContext(t), &pb.EntityBatchResult{CompletionToken: held.CompletionToken,
		EntityState: wrapperspb.String("1"), Results: []*pb.OperationResult{success("1")}})
	wantCode(t, "a completion with the token given back", err, codes.NotFound)
	h.completeBatch(t, again, "1", "1")

	backlog := nextBatch(t, s2)
	if got := ops(t, backlog); !slices.Equal(got, []string{"add(10)"}) || backlog.GetEntityRequestV2().GetEntityState().GetValue() != "1" {
		t.Fatalf("after the release the batch is %v, want the queued signal on state 1", backlog)
	}
	h.completeBatch(t, backlog, "11", "")

	inst, err := app.Client().WaitForCompletion(callContext(t), "locker")
	if err != nil || inst.Status != reprise.StatusCompleted || string(inst.Output) != "1" {
		t.Fatalf("Locker: %+v %v, want Completed with the call's result 1", inst, err)
	}
	e := waitEntity(t, h, counter.String(), func(e *pb.EntityMetadata) bool { return e.LockedBy == nil })
	if e.GetSerializedState().GetValue() != "11" || e.BacklogQueueSize != 0 {
		t.Errorf("entity %v, want state 11, no lock, no backlog", e)
	}
	n := first.svc.dispatched.size()
	if second != first {
		n += second.svc.dispatched.size()
	}
	if n != 0 {
		t.Errorf("%d items still waiting for a completion", n)
	}
}

func entityMessage(id int32, m *pb.SendEntityMessageAction) *pb.OrchestratorAction {
	return &pb.OrchestratorAction{Id: id, OrchestratorActionType: &pb.OrchestratorAction_SendEntityMessage{SendEntityMessage: m}}
}

// TestSendEntityMessageActions runs an orchestration's entity actions through the worker RPCs:
// a call (the entity's batch shows the caller, the reply comes back as entityOperationCompleted),
// a critical section over two entities (granted as entityLockGranted, released by two unlocks)
// and a signal; each turn's past events show the actions in their proto form. An action to an
// ID that is not an entity's fails the instance.
func TestSendEntityMessageActions(t *testing.T) {
	h := serveWork(t, nil)
	s, _ := h.openStream(t, entityFilters([]string{"Orch"}, "counter"))
	h.start(t, "Orch", "o1")
	turn := next(t, s)
	complete := func(item *pb.WorkItem, actions ...*pb.OrchestratorAction) {
		t.Helper()
		if _, err := h.client.CompleteOrchestratorTask(callContext(t), &pb.OrchestratorResponse{InstanceId: "o1",
			CompletionToken: item.CompletionToken, Actions: actions}); err != nil {
			t.Fatal(err)
		}
	}
	complete(turn, entityMessage(0, &pb.SendEntityMessageAction{EntityMessageType: &pb.SendEntityMessageAction_EntityOperationCalled{
		EntityOperationCalled: &pb.EntityOperationCalledEvent{RequestId: "call-1", Operation: "get",
			TargetInstanceId: wrapperspb.String("@Counter@c"), ParentInstanceId: wrapperspb.String("o1")}}}))

	batch := nextBatch(t, s)
	if got := ops(t, batch); batch.GetEntityRequestV2().InstanceId != "@counter@c" || !slices.Equal(got, []string{"call get() from o1"}) {
		t.Fatalf("batch %v, want o1's call to @counter@c", batch)
	}
	h.completeBatch(t, batch, "5", "5")

	turn = next(t, s)
	req := turn.GetOrchestratorRequest()
	var called *pb.HistoryEvent
	for _, e := range req.PastEvents {
		if e.GetEntityOperationCalled() != nil {
			called = e
		}
	}
	if called == nil || called.EventId != 0 || called.GetEntityOperationCalled().GetTargetInstanceId().GetValue() != "@counter@c" ||
		called.GetEntityOperationCalled().RequestId != "call-1" {
		t.Fatalf("past events %v, want the call as entityOperationCalled #0 to @counter@c", req.PastEvents)
	}
	if got := eventTypes(req.NewEvents); !slices.Equal(got, []string{"orchestratorStarted", "entityOperationCompleted"}) ||
		req.NewEvents[1].GetEntityOperationCompleted().RequestId != "call-1" || req.NewEvents[1].GetEntityOperationCompleted().GetOutput().GetValue() != "5" {
		t.Fatalf("new events %v, want the call's reply 5", req.NewEvents)
	}

	set := []string{"@counter@c", "@counter@d"}
	complete(turn, entityMessage(1, &pb.SendEntityMessageAction{EntityMessageType: &pb.SendEntityMessageAction_EntityLockRequested{
		EntityLockRequested: &pb.EntityLockRequestedEvent{CriticalSectionId: "cs-1", LockSet: set, ParentInstanceId: wrapperspb.String("o1")}}}))
	turn = next(t, s) // the lock passes along the set without running anything
	req = turn.GetOrchestratorRequest()
	if got := eventTypes(req.NewEvents); !slices.Equal(got, []string{"orchestratorStarted", "entityLockGranted"}) ||
		req.NewEvents[1].GetEntityLockGranted().CriticalSectionId != "cs-1" {
		t.Fatalf("new events %v, want the grant of cs-1", req.NewEvents)
	}
	if e := h.entity(t, "@counter@d"); e.Entity.GetLockedBy().GetValue() != "o1" {
		t.Errorf("@counter@d %v, want it locked by o1", e)
	}
	unlock := func(id int32, target string) *pb.OrchestratorAction {
		return entityMessage(id, &pb.SendEntityMessageAction{EntityMessageType: &pb.SendEntityMessageAction_EntityUnlockSent{
			EntityUnlockSent: &pb.EntityUnlockSentEvent{CriticalSectionId: "cs-1", TargetInstanceId: wrapperspb.String(target)}}})
	}
	complete(turn, unlock(2, set[0]), unlock(3, set[1]),
		entityMessage(4, &pb.SendEntityMessageAction{EntityMessageType: &pb.SendEntityMessageAction_EntityOperationSignaled{
			EntityOperationSignaled: &pb.EntityOperationSignaledEvent{RequestId: "sig-1", Operation: "add", Input: wrapperspb.String("2"),
				TargetInstanceId: wrapperspb.String("@counter@d")}}}),
		completeWith(5, pb.OrchestrationStatus_ORCHESTRATION_STATUS_COMPLETED, `"ok"`))
	batch = nextBatch(t, s)
	if got := ops(t, batch); batch.GetEntityRequestV2().InstanceId != "@counter@d" || !slices.Equal(got, []string{"add(2)"}) {
		t.Fatalf("batch %v, want the signal to @counter@d", batch)
	}
	h.completeBatch(t, batch, "2", "")
	if st := h.wait(t, "o1"); st.OrchestrationStatus != pb.OrchestrationStatus_ORCHESTRATION_STATUS_COMPLETED {
		t.Fatalf("o1 %v, want COMPLETED", st)
	}
	for _, id := range set {
		if e := waitEntity(t, h, id, func(e *pb.EntityMetadata) bool { return e.LockedBy == nil }); e.BacklogQueueSize != 0 {
			t.Errorf("%s %v, want no backlog", id, e)
		}
	}
	hist, err := h.client.StreamInstanceHistory(callContext(t), &pb.StreamInstanceHistoryRequest{InstanceId: "o1"})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for {
		chunk, err := hist.Recv()
		if err != nil {
			break
		}
		for _, typ := range eventTypes(chunk.Events) {
			if len(typ) > 6 && typ[:6] == "entity" {
				types = append(types, typ)
			}
		}
	}
	want := []string{"entityOperationCalled", "entityOperationCompleted", "entityLockRequested", "entityLockGranted",
		"entityUnlockSent", "entityUnlockSent", "entityOperationSignaled"}
	if !slices.Equal(types, want) {
		t.Errorf("o1's entity events %q, want %q", types, want)
	}

	// An action to an ID that is not an entity's fails the instance with the reason.
	h.start(t, "Orch", "o2")
	turn = next(t, s)
	if _, err := h.client.CompleteOrchestratorTask(callContext(t), &pb.OrchestratorResponse{InstanceId: "o2", CompletionToken: turn.CompletionToken,
		Actions: []*pb.OrchestratorAction{entityMessage(0, &pb.SendEntityMessageAction{EntityMessageType: &pb.SendEntityMessageAction_EntityOperationSignaled{
			EntityOperationSignaled: &pb.EntityOperationSignaledEvent{RequestId: "sig-2", Operation: "add", TargetInstanceId: wrapperspb.String("counter")}}})}}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("a signal to a non-entity ID: %v, want INVALID_ARGUMENT", err)
	}
	if st := h.wait(t, "o2"); st.OrchestrationStatus != pb.OrchestrationStatus_ORCHESTRATION_STATUS_FAILED || st.FailureDetails.GetErrorType() != "InvalidWorkerResponse" {
		t.Errorf("o2 %v, want FAILED with InvalidWorkerResponse", st)
	}
}

// TestDurableTaskJSEntitiesV1 runs the entity scenarios of interop/durabletask-js (see
// cmd/reprise TestInteropDurableTaskJSEntities, which runs them on `reprise serve` with
// entityRequestV2) with the real @microsoft/durabletask-js worker and client on a service that
// sends entity batches in the older form (entityRequest, Work.EntityRequestsV1).
func TestDurableTaskJSEntitiesV1(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("skipping: node is not on PATH; install Node.js 20+ and npm to run it")
	}
	dir, err := filepath.Abs(filepath.Join("..", "..", "interop", "durabletask-js"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@microsoft", "durabletask-js", "package.json")); err != nil {
		npm, lerr := exec.LookPath("npm")
		if lerr != nil {
			t.Skip("skipping: npm is not on PATH; install Node.js 20+ and npm to run it")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
		}
	}
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "hub.db"), sqlite.Options{Hub: "default"})
	if err != nil {
		t.Fatal(err)
	}
	signals := engine.NewSignals(st)
	t.Cleanup(func() { signals.Close(); st.Close() })
	svc := NewService(Hub{Name: "default", Plane: control.New(st, control.Options{Hub: "default"}),
		Work: &Work{Store: st, Signals: signals, EntityRequestsV1: true, Logger: slog.New(slog.DiscardHandler)}})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(ServerOptions()...)
	pb.RegisterTaskHubSidecarServiceServer(gs, svc)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop) // before the store closes (cleanups run last in, first out)
	env := append(os.Environ(), "GRPC_ADDR="+lis.Addr().String())

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	worker := exec.CommandContext(ctx, node, "worker.mjs", "--package", "@microsoft/durabletask-js", "--name", "first", "--functions", "all", "--filters")
	worker.Dir, worker.Env = dir, env
	var workerErr strings.Builder
	worker.Stderr = &workerErr
	stdout, err := worker.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := worker.StdinPipe(); err != nil { // held open: the worker stops when stdin ends
		t.Fatal(err)
	}
	if err := worker.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = worker.Process.Kill(); _ = worker.Wait() })
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || !strings.HasPrefix(line, "started ") {
		t.Fatalf("worker.mjs did not start: %q %v\n%s", line, err, workerErr.String())
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()

	scenarios := []string{"entities-client", "entities-orchestration", "entities-lock"}
	cmd := exec.CommandContext(ctx, node, append([]string{"scenarios.mjs", "--package", "@microsoft/durabletask-js"}, scenarios...)...)
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.CombinedOutput()
	for _, name := range scenarios {
		if !regexp.MustCompile(`(?m)^ok ` + regexp.QuoteMeta(name) + `$`).Match(out) {
			t.Errorf("scenario %s did not pass with entityRequest (V1)", name)
		}
	}
	if t.Failed() || err != nil {
		t.Fatalf("scenarios.mjs: %v\n%s\nworker stderr:\n%s", err, out, workerErr.String())
	}
}

// TestUnfilteredStreamsLeaveGoEntities: a stream without filters claims every entity name but
// those Go code in the process runs (Work.TakenEntities, which package sidecar fills from the
// App's registrations).
func TestUnfilteredStreamsLeaveGoEntities(t *testing.T) {
	h := serveWork(t, func(w *Work) { w.TakenEntities = []string{"gocounter"} })
	s, _ := h.openStream(t, nil)
	h.signal(t, "@GoCounter@a", "add", "1")
	h.signal(t, "@jscounter@a", "add", "1")
	if id := nextBatch(t, s).GetEntityRequestV2().GetInstanceId(); id != "@jscounter@a" {
		t.Fatalf("unfiltered stream got the batch of %q, want @jscounter@a", id)
	}
	work, err := h.st.ClaimEntities(context.Background(), "go-host", store.Names{"gocounter"}, 10, time.Minute)
	if err != nil || len(work) != 1 || work[0].Instance.ID != "@gocounter@a" {
		t.Fatalf("the Go host's claim: %v %v, want the entity the stream left", work, err)
	}
}

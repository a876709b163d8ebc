package grpcapi

// Durable entities over the protocol: the client RPCs (SignalEntity, GetEntity, QueryEntities,
// CleanEntityStorage) on the control plane, and the entity work items of the worker streams
// (entityRequest, entityRequestV2) with their answers (CompleteEntityTask,
// AbandonTaskEntityWorkItem). The engine of a stream claims the entities, plans their batches
// (internal/entity) and commits them; the worker runs the operations.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/reprise-dev/reprise/internal/control"
	"github.com/reprise-dev/reprise/internal/engine"
	"github.com/reprise-dev/reprise/internal/entity"
	"github.com/reprise-dev/reprise/internal/grpcapi/pb"
	"github.com/reprise-dev/reprise/internal/history"
	"github.com/reprise-dev/reprise/store"
)

// SignalEntity queues an operation for an entity (created by its first message), delivered at
// scheduledTime when that is in the future. The SDK's requestId is kept, so that a signal the
// client sends again (a retry after a lost answer) runs once.
func (s *Service) SignalEntity(ctx context.Context, r *pb.SignalEntityRequest) (*pb.SignalEntityResponse, error) {
	p, err := s.plane(ctx)
	if err != nil {
		return nil, err
	}
	input, err := optionalInput("input", r.Input)
	if err != nil {
		return nil, err
	}
	at, err := timeOf("scheduledTime", r.ScheduledTime)
	if err != nil {
		return nil, err
	}
	err = p.SignalEntity(ctx, control.SignalRequest{EntityID: r.InstanceId, Operation: r.Name, Input: input,
		RequestID: r.RequestId, At: at, Trace: traceFromProto(r.ParentTraceContext)})
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.SignalEntityResponse{}, nil
}

// optionalInput is the JSON of an optional input: nil when absent or empty, else the SDK's text,
// which must be JSON.
func optionalInput(what string, v *wrapperspb.StringValue) (json.RawMessage, error) {
	if v == nil || v.Value == "" {
		return nil, nil
	}
	return payload(what, v)
}

// GetEntity answers exists=true only for an entity with state, as Durable Functions does: an
// entity that was never signalled, was deleted, or is only locked or queued does not exist. The
// metadata of a known entity without state (its lock and backlog) comes with exists=false.
func (s *Service) GetEntity(ctx context.Context, r *pb.GetEntityRequest) (*pb.GetEntityResponse, error) {
	p, err := s.plane(ctx)
	if err != nil {
		return nil, err
	}
	rec, err := p.GetEntity(ctx, r.InstanceId, r.IncludeState)
	if control.Classify(err) == control.KindNotFound {
		return &pb.GetEntityResponse{Exists: false}, nil
	}
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.GetEntityResponse{Exists: rec.Exists, Entity: entityMetadata(rec, r.IncludeState)}, nil
}

func entityMetadata(rec control.EntityRecord, withState bool) *pb.EntityMetadata {
	m := &pb.EntityMetadata{InstanceId: rec.InstanceID, LastModifiedTime: timestamp(rec.LastModified),
		BacklogQueueSize: int32(min(rec.Backlog, 1<<31-1)), LockedBy: optionalText(rec.LockedBy)}
	if withState && rec.State != nil {
		m.SerializedState = wrapperspb.String(string(rec.State))
	}
	return m
}

// entityPrefix normalizes an instance-ID prefix of QueryEntities as the SDKs do before they send
// it: an '@' in front, and the name part (up to the next '@') lower-cased; the key keeps its case.
func entityPrefix(prefix string) string {
	if prefix == "" {
		return ""
	}
	if prefix[0] != '@' {
		prefix = "@" + prefix
	}
	if i := strings.IndexByte(prefix[1:], '@'); i >= 0 {
		return strings.ToLower(prefix[:i+1]) + prefix[i+1:]
	}
	return strings.ToLower(prefix)
}

// QueryEntities lists a page of entities: those with state, and with includeTransient also those
// without (deleted, or only locked or queued), by instance-ID prefix and last-modified time (from
// inclusive, to exclusive), with their state when includeState is set.
func (s *Service) QueryEntities(ctx context.Context, r *pb.QueryEntitiesRequest) (*pb.QueryEntitiesResponse, error) {
	p, err := s.plane(ctx)
	if err != nil {
		return nil, err
	}
	in := r.GetQuery()
	q := control.EntityQuery{IDPrefix: entityPrefix(in.GetInstanceIdStartsWith().GetValue()), WithState: in.GetIncludeState(),
		IncludeTransient: in.GetIncludeTransient(), ContinuationToken: in.GetContinuationToken().GetValue()}
	if q.LastModifiedFrom, err = timeOf("query.lastModifiedFrom", in.GetLastModifiedFrom()); err != nil {
		return nil, err
	}
	if q.LastModifiedTo, err = timeOf("query.lastModifiedTo", in.GetLastModifiedTo()); err != nil {
		return nil, err
	}
	if q.PageSize, err = pageSize("query.pageSize", in.GetPageSize().GetValue()); err != nil {
		return nil, err
	}
	page, next, err := p.QueryEntities(ctx, q)
	if err != nil {
		return nil, toStatus(err)
	}
	out := &pb.QueryEntitiesResponse{Entities: make([]*pb.EntityMetadata, len(page))}
	for i, rec := range page {
		out.Entities[i] = entityMetadata(rec, q.WithState)
	}
	if next != "" {
		out.ContinuationToken = wrapperspb.String(next)
	}
	return out, nil
}

// CleanEntityStorage looks at one page of entities: it removes those without state, lock or
// backlog that have been idle for the reorder window (removeEmptyEntities), and releases the
// locks whose orchestration no longer runs the execution that took them (releaseOrphanedLocks).
// The SDKs call it again with the continuation token until there is none.
func (s *Service) CleanEntityStorage(ctx context.Context, r *pb.CleanEntityStorageRequest) (*pb.CleanEntityStorageResponse, error) {
	p, err := s.plane(ctx)
	if err != nil {
		return nil, err
	}
	res, err := p.CleanEntityStorage(ctx, control.CleanRequest{RemoveEmpty: r.RemoveEmptyEntities,
		ReleaseOrphanedLocks: r.ReleaseOrphanedLocks, ContinuationToken: r.GetContinuationToken().GetValue()})
	if err != nil {
		return nil, toStatus(err)
	}
	out := &pb.CleanEntityStorageResponse{EmptyEntitiesRemoved: int32(res.Removed), OrphanedLocksReleased: int32(res.Released)}
	if res.ContinuationToken != "" {
		out.ContinuationToken = wrapperspb.String(res.ContinuationToken)
	}
	return out, nil
}

// CompleteEntityTask commits a worker's batch and answers once it is committed, as
// CompleteOrchestratorTask; NOT_FOUND when no batch waits for the token.
func (s *Service) CompleteEntityTask(ctx context.Context, r *pb.EntityBatchResult) (*pb.CompleteTaskResponse, error) {
	if _, err := s.hub(ctx); err != nil {
		return nil, err
	}
	if r.CompletionToken == "" {
		return nil, invalid("completionToken is required: give the token of the entity work item")
	}
	if err := s.complete(ctx, r.CompletionToken, dispatchKey{}, completion{ent: r}); err != nil {
		return nil, err
	}
	return &pb.CompleteTaskResponse{}, nil
}

// AbandonTaskEntityWorkItem gives a batch back: the entity runs it again after a short delay,
// from the state of its last commit, with its lock and backlog as they were.
func (s *Service) AbandonTaskEntityWorkItem(ctx context.Context, r *pb.AbandonEntityTaskRequest) (*pb.AbandonEntityTaskResponse, error) {
	if err := s.abandon(ctx, r.CompletionToken); err != nil {
		return nil, err
	}
	return &pb.AbandonEntityTaskResponse{}, nil
}

var _ engine.EntityRunner = (*workerStream)(nil)

// EntityNames implements engine.EntityRunner: the entity names of the worker's filters, or every
// name but the taken ones when it sent none.
func (w *workerStream) EntityNames() store.Names {
	w.namesMu.Lock()
	defer w.namesMu.Unlock()
	return w.ent
}

// RunEntityBatch implements engine.EntityRunner: it sends the batch as an entity work item and
// waits for the worker's CompleteEntityTask (or abandon), the stream's end or the lease's
// deadline. The batch itself is the dispatch record: results[i] is the result of its request i,
// whatever the worker says about the operations (operationInfos).
func (w *workerStream) RunEntityBatch(ctx context.Context, b entity.Batch) (entity.Result, func(error), error) {
	p := w.svc.dispatched.add(w.hub.Name, b.InstanceID, entityTask)
	item := &pb.WorkItem{CompletionToken: p.token}
	if w.hub.Work.EntityRequestsV1 {
		item.Request = &pb.WorkItem_EntityRequest{EntityRequest: entityBatchRequest(b)}
	} else {
		item.Request = &pb.WorkItem_EntityRequestV2{EntityRequestV2: entityRequestV2(b)}
	}
	c, err := w.await(ctx, p, item)
	if err != nil {
		return entity.Result{}, nil, err
	}
	if c.abandoned {
		return entity.Result{}, nil, w.giveBack(c, b.Claim, "the worker abandoned it")
	}
	r := c.ent
	if len(r.Results) == 0 {
		// The JS SDK answers a failure of its own (not of an operation) so, meaning "retry".
		why := "the worker returned no results"
		if f := r.FailureDetails; f != nil {
			why = fmt.Sprintf("the worker failed the batch (%s: %s)", f.ErrorType, f.ErrorMessage)
		}
		return entity.Result{}, nil, w.giveBack(c, b.Claim, why)
	}
	if unregisteredBatch(r) {
		w.leaveOut(store.EntityWorkKind, b.Name)
		w.log.Info("the worker does not run this entity: the stream leaves it to others", "name", b.Name, "entity", b.InstanceID)
		return entity.Result{}, nil, w.giveBack(c, b.Claim, fmt.Sprintf("the worker does not run entity %q", b.Name))
	}
	res, err := batchResult(b, r)
	if err != nil {
		// Delivered again, the batch would come back the same: its operations fail instead,
		// with the reason, and the state stays as it was.
		w.log.Warn("entity operations failed: their worker's response is invalid", "entity", b.InstanceID, "err", err)
		res = failedBatch(b, &history.Failure{Type: "InvalidWorkerResponse", Message: err.Error(), NonRetriable: true})
		return res, func(error) { c.result <- status.Error(codes.InvalidArgument, err.Error()) }, nil
	}
	return res, func(err error) { c.result <- commitStatus(err) }, nil
}

// entityRequestV2 is a batch as the proto-native work item: the operations as the history events
// that carry them (entityOperationSignaled, entityOperationCalled with its caller).
func entityRequestV2(b entity.Batch) *pb.EntityRequest {
	r := &pb.EntityRequest{InstanceId: b.InstanceID, ExecutionId: b.ExecutionID, EntityState: text(b.State),
		OperationRequests: make([]*pb.HistoryEvent, len(b.Requests))}
	for i, q := range b.Requests {
		h := &pb.HistoryEvent{EventId: -1, Timestamp: timestamppb.New(q.Event.Time)}
		if q.Caller != nil {
			h.EventType = &pb.HistoryEvent_EntityOperationCalled{EntityOperationCalled: &pb.EntityOperationCalledEvent{
				RequestId: q.RequestID, Operation: q.Operation, Input: text(q.Input),
				ParentInstanceId: wrapperspb.String(q.Caller.InstanceID), ParentExecutionId: wrapperspb.String(q.Caller.ExecutionID)}}
		} else {
			h.EventType = &pb.HistoryEvent_EntityOperationSignaled{EntityOperationSignaled: &pb.EntityOperationSignaledEvent{
				RequestId: q.RequestID, Operation: q.Operation, Input: text(q.Input), ScheduledTime: timestamp(q.Event.FireAt)}}
		}
		r.OperationRequests[i] = h
	}
	return r
}

// entityBatchRequest is a batch as the older work item (EntityBatchRequest), which carries no
// callers: they are in the batch, which the stream keeps until the worker answers.
func entityBatchRequest(b entity.Batch) *pb.EntityBatchRequest {
	r := &pb.EntityBatchRequest{InstanceId: b.InstanceID, EntityState: text(b.State), Operations: make([]*pb.OperationRequest, len(b.Requests))}
	for i, q := range b.Requests {
		r.Operations[i] = &pb.OperationRequest{Operation: q.Operation, RequestId: q.RequestID, Input: text(q.Input),
			TraceContext: traceToProto(q.Event.Trace)}
	}
	return r
}

// unregisteredBatch reports whether a batch's results are only its worker's "I do not run this
// entity" (durabletask-js answers EntityTaskNotFound for every operation).
func unregisteredBatch(r *pb.EntityBatchResult) bool {
	for _, res := range r.Results {
		if f := res.GetFailure(); f == nil || f.GetFailureDetails().GetErrorType() != "EntityTaskNotFound" {
			return false
		}
	}
	return len(r.Results) > 0
}

// batchResult turns a worker's answer into the result of the batch, checking what the engine
// will store.
func batchResult(b entity.Batch, r *pb.EntityBatchResult) (entity.Result, error) {
	if len(r.Results) > len(b.Requests) {
		return entity.Result{}, fmt.Errorf("%d results for a batch of %d operations", len(r.Results), len(b.Requests))
	}
	res := entity.Result{Results: make([]entity.OpResult, len(r.Results))}
	for i, or := range r.Results {
		var out entity.OpResult
		var err error
		var start, end *timestamppb.Timestamp
		switch x := or.GetResultType().(type) {
		case *pb.OperationResult_Success:
			if out.Output, err = optionalPayload(fmt.Sprintf("results[%d] result", i), x.Success.Result); err != nil {
				return entity.Result{}, err
			}
			start, end = x.Success.StartTimeUtc, x.Success.EndTimeUtc
		case *pb.OperationResult_Failure:
			out.Failure = failureOf(x.Failure.FailureDetails)
			if out.Failure == nil {
				out.Failure = &history.Failure{Message: "the operation failed (its worker gave no failure details)"}
			}
			start, end = x.Failure.StartTimeUtc, x.Failure.EndTimeUtc
		default:
			return entity.Result{}, fmt.Errorf("results[%d] is neither a success nor a failure", i)
		}
		out.Start, out.End = opTime(start), opTime(end)
		res.Results[i] = out
	}
	if st := r.EntityState; st != nil && st.Value != "" && st.Value != "null" {
		if !json.Valid([]byte(st.Value)) {
			return entity.Result{}, errors.New("entityState is not JSON: the state is the JSON text the SDK serialized")
		}
		if err := control.CheckPayload("entityState", []byte(st.Value)); err != nil {
			return entity.Result{}, err
		}
		res.State = json.RawMessage(st.Value)
	}
	for i, a := range r.Actions {
		act, err := operationAction(a)
		if err != nil {
			return entity.Result{}, fmt.Errorf("actions[%d]: %w", i, err)
		}
		res.Actions = append(res.Actions, act)
	}
	return res, nil
}

// operationAction is an entity operation's signal or orchestration start. Targets and names are
// checked when the batch is committed (an invalid one is dropped there with a warning).
func operationAction(a *pb.OperationAction) (entity.Action, error) {
	switch x := a.GetOperationActionType().(type) {
	case *pb.OperationAction_SendSignal:
		ss := x.SendSignal
		input, err := optionalPayload("sendSignal input", ss.Input)
		if err != nil {
			return entity.Action{}, err
		}
		at, err := timeOf("sendSignal scheduledTime", ss.ScheduledTime)
		if err != nil {
			return entity.Action{}, errors.New(status.Convert(err).Message())
		}
		return entity.Action{Signal: &entity.SignalAction{To: ss.InstanceId, Operation: ss.Name, Input: input, At: at}}, nil
	case *pb.OperationAction_StartNewOrchestration:
		sn := x.StartNewOrchestration
		input, err := optionalPayload("startNewOrchestration input", sn.Input)
		if err != nil {
			return entity.Action{}, err
		}
		at, err := timeOf("startNewOrchestration scheduledTime", sn.ScheduledTime)
		if err != nil {
			return entity.Action{}, errors.New(status.Convert(err).Message())
		}
		return entity.Action{Start: &entity.StartAction{InstanceID: sn.InstanceId, Name: sn.Name, Version: sn.GetVersion().GetValue(),
			Input: input, At: at}}, nil
	}
	return entity.Action{}, errors.New("an operation action of a type Reprise does not know")
}

// opTime is the time of an optional, valid timestamp; zero otherwise (it is only shown).
func opTime(ts *timestamppb.Timestamp) time.Time {
	if ts == nil || ts.CheckValid() != nil {
		return time.Time{}
	}
	return ts.AsTime().UTC()
}

// failedBatch is the result of a batch whose every operation failed with f: the state as it was,
// no actions.
func failedBatch(b entity.Batch, f *history.Failure) entity.Result {
	res := entity.Result{State: b.State, Results: make([]entity.OpResult, len(b.Requests))}
	for i := range res.Results {
		res.Results[i] = entity.OpResult{Failure: f}
	}
	return res
}

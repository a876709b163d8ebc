package grpcapi

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/reprise-dev/reprise/internal/grpcapi/pb"
	"github.com/reprise-dev/reprise/internal/history"
)

// historyChunk is how many events one HistoryChunk carries: small enough to stay far below
// gRPC's default 4 MiB message limit with ordinary payloads, large enough to be few messages.
const historyChunk = 100

// StreamInstanceHistory sends the history of the instance's current execution (the only one
// Reprise keeps) in chunks, oldest first.
func (s *Service) StreamInstanceHistory(r *pb.StreamInstanceHistoryRequest, stream grpc.ServerStreamingServer[pb.HistoryChunk]) error {
	ctx := stream.Context()
	p, err := s.plane(ctx)
	if err != nil {
		return err
	}
	if exec := r.GetExecutionId(); exec != nil {
		inst, err := p.Get(ctx, r.InstanceId)
		if err != nil {
			return toStatus(err)
		}
		if exec.Value != inst.ExecutionID {
			return status.Errorf(codes.NotFound, "execution %q of instance %q is not its current one (%q): Reprise keeps the history of the current execution only",
				exec.Value, r.InstanceId, inst.ExecutionID)
		}
	}
	events, err := p.History(ctx, r.InstanceId)
	if err != nil {
		return toStatus(err)
	}
	out := make([]*pb.HistoryEvent, 0, len(events))
	for _, ev := range events {
		pe, err := historyEvent(ev)
		if err != nil {
			return status.Errorf(codes.Internal, "history of %q: %v", r.InstanceId, err)
		}
		if pe != nil {
			out = append(out, pe)
		}
	}
	for len(out) > 0 {
		n := min(historyChunk, len(out))
		if err := stream.Send(&pb.HistoryChunk{Events: out[:n]}); err != nil {
			return err
		}
		out = out[n:]
	}
	return contextStatus(ctx)
}

// contextStatus is the status of a call whose context ended, else nil.
func contextStatus(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return status.FromContextError(err).Err()
	}
	return nil
}

func instanceRef(id, executionID string) *pb.OrchestrationInstance {
	o := &pb.OrchestrationInstance{InstanceId: id}
	if executionID != "" {
		o.ExecutionId = wrapperspb.String(executionID)
	}
	return o
}

// optionalText returns s as a StringValue, absent when empty (a version that was never set).
func optionalText(s string) *wrapperspb.StringValue {
	if s == "" {
		return nil
	}
	return wrapperspb.String(s)
}

// traceFromProto returns the trace context an SDK sent; nil when it sent none. The proto
// deprecates spanID (traceParent names the span), but SDKs still send it, so it is kept and
// handed back as sent.
func traceFromProto(tc *pb.TraceContext) *history.TraceContext {
	if tc == nil {
		return nil
	}
	//lint:ignore SA1019 kept as the SDK sent it (see above)
	return &history.TraceContext{TraceParent: tc.TraceParent, TraceState: tc.GetTraceState().GetValue(), SpanID: tc.SpanID}
}

// traceToProto returns a stored trace context in the proto's form; nil stays absent.
func traceToProto(tc *history.TraceContext) *pb.TraceContext {
	if tc == nil {
		return nil
	}
	//lint:ignore SA1019 handed back as the SDK sent it (see traceFromProto)
	return &pb.TraceContext{TraceParent: tc.TraceParent, TraceState: optionalText(tc.TraceState), SpanID: tc.SpanID}
}

// historyEvent returns the proto's form of a stored event; nil for the bookkeeping events the
// proto has no place for (HistoryState) and for Reprise's own (PatchApplied).
func historyEvent(ev history.Event) (*pb.HistoryEvent, error) {
	h := &pb.HistoryEvent{EventId: ev.ID, Timestamp: timestamppb.New(ev.Time)}
	switch ev.Type {
	case history.ExecutionStarted:
		e := &pb.ExecutionStartedEvent{Name: ev.Name, Input: text(ev.Input), OrchestrationInstance: instanceRef(ev.InstanceID, ev.ExecutionID),
			Version: optionalText(ev.Version), Tags: ev.Tags, ParentTraceContext: traceToProto(ev.Trace)}
		if ev.Parent != nil {
			e.ParentInstance = &pb.ParentInstanceInfo{TaskScheduledId: ev.Parent.TaskID,
				OrchestrationInstance: instanceRef(ev.Parent.InstanceID, ev.Parent.ExecutionID)}
			if ev.Parent.Name != "" {
				e.ParentInstance.Name = wrapperspb.String(ev.Parent.Name)
			}
		}
		h.EventType = &pb.HistoryEvent_ExecutionStarted{ExecutionStarted: e}
	case history.ExecutionCompleted, history.ExecutionFailed:
		st := pb.OrchestrationStatus(ev.Status)
		if ev.Type == history.ExecutionFailed {
			st = pb.OrchestrationStatus_ORCHESTRATION_STATUS_FAILED
		}
		h.EventType = &pb.HistoryEvent_ExecutionCompleted{ExecutionCompleted: &pb.ExecutionCompletedEvent{
			OrchestrationStatus: st, Result: text(ev.Result), FailureDetails: failure(ev.Failure)}}
	case history.ExecutionTerminated:
		h.EventType = &pb.HistoryEvent_ExecutionTerminated{ExecutionTerminated: &pb.ExecutionTerminatedEvent{Input: text(ev.Input), Recurse: ev.Recursive}}
	case history.TaskScheduled:
		h.EventType = &pb.HistoryEvent_TaskScheduled{TaskScheduled: &pb.TaskScheduledEvent{Name: ev.Name, Input: text(ev.Input),
			Version: optionalText(ev.Version), Tags: ev.Tags, ParentTraceContext: traceToProto(ev.Trace)}}
	case history.TaskCompleted:
		h.EventType = &pb.HistoryEvent_TaskCompleted{TaskCompleted: &pb.TaskCompletedEvent{TaskScheduledId: ev.TaskID, Result: text(ev.Result)}}
	case history.TaskFailed:
		h.EventType = &pb.HistoryEvent_TaskFailed{TaskFailed: &pb.TaskFailedEvent{TaskScheduledId: ev.TaskID, FailureDetails: failure(ev.Failure)}}
	case history.SubOrchestrationInstanceCreated:
		h.EventType = &pb.HistoryEvent_SubOrchestrationInstanceCreated{SubOrchestrationInstanceCreated: &pb.SubOrchestrationInstanceCreatedEvent{
			InstanceId: ev.InstanceID, Name: ev.Name, Input: text(ev.Input),
			Version: optionalText(ev.Version), Tags: ev.Tags, ParentTraceContext: traceToProto(ev.Trace)}}
	case history.SubOrchestrationInstanceCompleted:
		h.EventType = &pb.HistoryEvent_SubOrchestrationInstanceCompleted{SubOrchestrationInstanceCompleted: &pb.SubOrchestrationInstanceCompletedEvent{
			TaskScheduledId: ev.TaskID, Result: text(ev.Result)}}
	case history.SubOrchestrationInstanceFailed:
		h.EventType = &pb.HistoryEvent_SubOrchestrationInstanceFailed{SubOrchestrationInstanceFailed: &pb.SubOrchestrationInstanceFailedEvent{
			TaskScheduledId: ev.TaskID, FailureDetails: failure(ev.Failure)}}
	case history.TimerCreated:
		h.EventType = &pb.HistoryEvent_TimerCreated{TimerCreated: &pb.TimerCreatedEvent{FireAt: timestamp(ev.FireAt)}}
	case history.TimerFired:
		h.EventType = &pb.HistoryEvent_TimerFired{TimerFired: &pb.TimerFiredEvent{FireAt: timestamp(ev.FireAt), TimerId: ev.TaskID}}
	case history.OrchestratorStarted:
		h.EventType = &pb.HistoryEvent_OrchestratorStarted{OrchestratorStarted: &pb.OrchestratorStartedEvent{}}
	case history.OrchestratorCompleted:
		h.EventType = &pb.HistoryEvent_OrchestratorCompleted{OrchestratorCompleted: &pb.OrchestratorCompletedEvent{}}
	case history.EventSent:
		h.EventType = &pb.HistoryEvent_EventSent{EventSent: &pb.EventSentEvent{InstanceId: ev.InstanceID, Name: ev.Name, Input: text(ev.Input)}}
	case history.EventRaised:
		h.EventType = &pb.HistoryEvent_EventRaised{EventRaised: &pb.EventRaisedEvent{Name: ev.Name, Input: text(ev.Input)}}
	case history.ContinueAsNew:
		h.EventType = &pb.HistoryEvent_ContinueAsNew{ContinueAsNew: &pb.ContinueAsNewEvent{Input: text(ev.Input)}}
	case history.GenericEvent:
		h.EventType = &pb.HistoryEvent_GenericEvent{GenericEvent: &pb.GenericEvent{Data: text(ev.Input)}}
	case history.HistoryState, history.PatchApplied:
		// PatchApplied is Reprise's own (a Go orchestrator's ctx.IsPatched): no SDK would know
		// it, and no SDK's orchestrator asks for it.
		return nil, nil
	// The entity events of an orchestration's history: its own messages (with their targets, as
	// histories carry them) and the replies and grants it received.
	case history.EntityOperationSignaled:
		h.EventType = &pb.HistoryEvent_EntityOperationSignaled{EntityOperationSignaled: &pb.EntityOperationSignaledEvent{
			RequestId: ev.RequestID, Operation: ev.Name, ScheduledTime: timestamp(ev.FireAt), Input: text(ev.Input),
			TargetInstanceId: optionalText(ev.InstanceID)}}
	case history.EntityOperationCalled:
		h.EventType = &pb.HistoryEvent_EntityOperationCalled{EntityOperationCalled: &pb.EntityOperationCalledEvent{
			RequestId: ev.RequestID, Operation: ev.Name, Input: text(ev.Input), TargetInstanceId: optionalText(ev.InstanceID)}}
	case history.EntityOperationCompleted:
		h.EventType = &pb.HistoryEvent_EntityOperationCompleted{EntityOperationCompleted: &pb.EntityOperationCompletedEvent{
			RequestId: ev.RequestID, Output: text(ev.Result)}}
	case history.EntityOperationFailed:
		h.EventType = &pb.HistoryEvent_EntityOperationFailed{EntityOperationFailed: &pb.EntityOperationFailedEvent{
			RequestId: ev.RequestID, FailureDetails: failure(ev.Failure)}}
	case history.EntityLockRequested:
		h.EventType = &pb.HistoryEvent_EntityLockRequested{EntityLockRequested: &pb.EntityLockRequestedEvent{
			CriticalSectionId: ev.RequestID, LockSet: ev.LockSet, Position: int32(ev.Position)}}
	case history.EntityLockGranted:
		h.EventType = &pb.HistoryEvent_EntityLockGranted{EntityLockGranted: &pb.EntityLockGrantedEvent{CriticalSectionId: ev.RequestID}}
	case history.EntityUnlockSent:
		h.EventType = &pb.HistoryEvent_EntityUnlockSent{EntityUnlockSent: &pb.EntityUnlockSentEvent{
			CriticalSectionId: ev.RequestID, TargetInstanceId: optionalText(ev.InstanceID)}}
	case history.ExecutionSuspended:
		h.EventType = &pb.HistoryEvent_ExecutionSuspended{ExecutionSuspended: &pb.ExecutionSuspendedEvent{Input: text(ev.Input)}}
	case history.ExecutionResumed:
		h.EventType = &pb.HistoryEvent_ExecutionResumed{ExecutionResumed: &pb.ExecutionResumedEvent{Input: text(ev.Input)}}
	case history.ExecutionRewound:
		h.EventType = &pb.HistoryEvent_ExecutionRewound{ExecutionRewound: &pb.ExecutionRewoundEvent{Reason: text(ev.Input)}}
	default:
		return nil, fmt.Errorf("event type %d has no form in the Durable Task protocol", ev.Type)
	}
	return h, nil
}

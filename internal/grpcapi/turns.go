package grpcapi

// Turns: a work item's events in the proto's form, and a worker's response as the turn's result
// (internal/replay.Result) or an activity's result event, checked before anything is stored.

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/reprise-dev/reprise/internal/control"
	"github.com/reprise-dev/reprise/internal/engine"
	"github.com/reprise-dev/reprise/internal/grpcapi/pb"
	"github.com/reprise-dev/reprise/internal/history"
	"github.com/reprise-dev/reprise/internal/replay"
	"github.com/reprise-dev/reprise/store"
)

// orchestratorRequest is the work item of a turn: the history the worker replays and the new
// events, in the shapes the SDKs expect. A rewind is shown as replay sees it (the failures it
// voids and the ExecutionRewound itself left out), since the SDKs know no rewind of their own
// in this form; continue-as-new's carried events follow their ExecutionStarted.
func orchestratorRequest(t engine.Turn) (*pb.OrchestratorRequest, error) {
	skip := replay.Voided(t.Past, t.New)
	past, err := protoEvents(t.Past, skip, 0)
	if err != nil {
		return nil, err
	}
	news, err := protoEvents(t.New, skip, len(t.Past))
	if err != nil {
		return nil, err
	}
	req := &pb.OrchestratorRequest{
		InstanceId:       t.Instance.ID,
		ExecutionId:      wrapperspb.String(t.Instance.ExecutionID),
		PastEvents:       past,
		NewEvents:        news,
		EntityParameters: &pb.OrchestratorEntityParameters{EntityMessageReorderWindow: durationpb.New(30 * time.Minute)},
	}
	// The span the worker reported in an earlier turn of this execution: the JS and .NET SDKs
	// keep one orchestration span (its ID and start) across the turns with it.
	if ws := history.LastWorkerSpan(t.Past); ws != nil {
		req.OrchestrationTraceContext = &pb.OrchestrationTraceContext{SpanID: wrapperspb.String(ws.SpanID)}
		if !ws.Start.IsZero() {
			req.OrchestrationTraceContext.SpanStartTime = timestamppb.New(ws.Start)
		}
	}
	return req, nil
}

// workerSpan returns the orchestration span a worker's response reports, if it is a W3C span
// ID (16 hex digits, not all zero) with a start that is a time: nil otherwise, so that a
// worker cannot grow the history with junk. Telemetry only: a bad one fails nothing.
func workerSpan(tc *pb.OrchestrationTraceContext) *history.WorkerSpan {
	id := tc.GetSpanID().GetValue()
	if len(id) != 16 || strings.Trim(id, "0") == "" || strings.Trim(id, "0123456789abcdefABCDEF") != "" {
		return nil
	}
	ws := &history.WorkerSpan{SpanID: id}
	if st := tc.GetSpanStartTime(); st != nil {
		if st.CheckValid() != nil {
			return nil
		}
		ws.Start = st.AsTime()
	}
	return ws
}

func protoEvents(evs []history.Event, skip map[int]bool, offset int) ([]*pb.HistoryEvent, error) {
	out := make([]*pb.HistoryEvent, 0, len(evs))
	for i, ev := range evs {
		if skip[offset+i] || ev.Type == history.ExecutionRewound {
			continue
		}
		pe, err := historyEvent(ev)
		if err != nil {
			return nil, err
		}
		if pe != nil {
			out = append(out, pe)
		}
		if ev.Type == history.ExecutionStarted {
			for _, c := range ev.Carried {
				if pc, err := historyEvent(c); err == nil && pc != nil {
					out = append(out, pc)
				}
			}
		}
	}
	return out, nil
}

// turnResult turns a worker's response into the result of the turn, checking what the engine
// will store.
func turnResult(t engine.Turn, r *pb.OrchestratorResponse) (*replay.Result, error) {
	now := time.Now().UTC()
	if r.InstanceId != "" && r.InstanceId != t.Instance.ID {
		return nil, fmt.Errorf("the response is for instance %q, the work item for %q", r.InstanceId, t.Instance.ID)
	}
	//lint:ignore SA1019 deprecated in the proto, still sent by older .NET workers: refused, not ignored
	if r.IsPartial {
		return nil, errors.New("chunked completions (isPartial) are not supported by Reprise: send the turn's actions in one OrchestratorResponse")
	}
	res := &replay.Result{WorkerSpan: workerSpan(r.OrchestrationTraceContext)}
	res.CustomStatus = customStatus(r.CustomStatus)
	used := map[int32]bool{}
	for _, e := range append(append([]history.Event(nil), t.Past...), t.New...) {
		if e.Type.Scheduling() {
			used[e.ID] = true
		}
	}
	for _, a := range r.Actions {
		if a == nil {
			continue
		}
		if _, ok := a.OrchestratorActionType.(*pb.OrchestratorAction_CompleteOrchestration); !ok {
			if used[a.Id] {
				return nil, fmt.Errorf("action %d: the ID is used by an earlier action of this execution; each action needs its own sequence number", a.Id)
			}
			used[a.Id] = true
		}
		ev, err := actionEvent(a, now)
		if err != nil {
			return nil, fmt.Errorf("action %d: %w", a.Id, err)
		}
		if ev != nil {
			res.Actions = append(res.Actions, *ev)
			continue
		}
		if res.Done {
			continue // the first completion counts
		}
		if err := complete(res, a.GetCompleteOrchestration()); err != nil {
			return nil, fmt.Errorf("action %d: %w", a.Id, err)
		}
	}
	all := append(append(append([]history.Event(nil), t.Past...), t.New...), res.Actions...)
	if !res.Done {
		res.Status = store.StatusRunning
		if suspended(all) {
			res.Status = store.StatusSuspended
		}
	}
	for _, e := range t.New {
		if e.Type == history.ExecutionTerminated && e.Recursive {
			res.Recursive = true
		}
	}
	res.OpenSubOrchestrations = openSubOrchestrations(all)
	return res, nil
}

// actionEvent returns the scheduling event of an action, or nil for completeOrchestration.
func actionEvent(a *pb.OrchestratorAction, now time.Time) (*history.Event, error) {
	ev := history.New(history.TaskScheduled, now)
	ev.ID = a.Id
	var err error
	switch x := a.OrchestratorActionType.(type) {
	case *pb.OrchestratorAction_ScheduleTask:
		st := x.ScheduleTask
		if err := checkName("scheduleTask name", st.Name); err != nil {
			return nil, err
		}
		ev.Name = st.Name
		if ev.Input, err = optionalPayload("scheduleTask input", st.Input); err != nil {
			return nil, err
		}
		ev.Version, ev.Tags, ev.Trace = st.GetVersion().GetValue(), st.Tags, traceFromProto(st.ParentTraceContext)
		if err := control.CheckStartLabels(ev.Version, ev.Tags, ev.Trace); err != nil {
			return nil, fmt.Errorf("scheduleTask: %w", err)
		}
	case *pb.OrchestratorAction_CreateSubOrchestration:
		cs := x.CreateSubOrchestration
		ev.Type = history.SubOrchestrationInstanceCreated
		if err := checkName("createSubOrchestration name", cs.Name); err != nil {
			return nil, err
		}
		ev.Name, ev.InstanceID = cs.Name, cs.InstanceId
		if ev.InstanceID == "" {
			ev.InstanceID = control.NewID()
		}
		if err := store.CheckID(ev.InstanceID); err != nil {
			return nil, fmt.Errorf("createSubOrchestration instanceId: %w", err)
		}
		if ev.Input, err = optionalPayload("createSubOrchestration input", cs.Input); err != nil {
			return nil, err
		}
		ev.Version, ev.Tags, ev.Trace = cs.GetVersion().GetValue(), cs.Tags, traceFromProto(cs.ParentTraceContext)
		if err := control.CheckStartLabels(ev.Version, ev.Tags, ev.Trace); err != nil {
			return nil, fmt.Errorf("createSubOrchestration: %w", err)
		}
	case *pb.OrchestratorAction_CreateTimer:
		ev.Type = history.TimerCreated
		if x.CreateTimer.FireAt == nil {
			return nil, errors.New("createTimer without fireAt")
		}
		if ev.FireAt, err = timeOf("createTimer fireAt", x.CreateTimer.FireAt); err != nil {
			return nil, errors.New(status.Convert(err).Message())
		}
		if err := store.CheckTime("createTimer fireAt", ev.FireAt); err != nil {
			return nil, err
		}
		ev.FireAt = ev.FireAt.UTC()
	case *pb.OrchestratorAction_SendEvent:
		se := x.SendEvent
		ev.Type = history.EventSent
		ev.InstanceID, ev.Name = se.GetInstance().GetInstanceId(), se.Name
		if err := store.CheckID(ev.InstanceID); err != nil {
			return nil, fmt.Errorf("sendEvent instance: %w", err)
		}
		if err := checkName("sendEvent name", se.Name); err != nil {
			return nil, err
		}
		if ev.Input, err = optionalPayload("sendEvent data", se.Data); err != nil {
			return nil, err
		}
	case *pb.OrchestratorAction_CompleteOrchestration:
		return nil, nil
	case *pb.OrchestratorAction_TerminateOrchestration:
		return nil, errors.New("terminateOrchestration (terminating another instance from an orchestrator) is not supported by Reprise yet; terminate it from a client")
	case *pb.OrchestratorAction_SendEntityMessage:
		if err := entityAction(&ev, x.SendEntityMessage, now); err != nil {
			return nil, fmt.Errorf("sendEntityMessage: %w", err)
		}
	case *pb.OrchestratorAction_RewindOrchestration:
		return nil, errors.New("rewindOrchestration: Reprise rewinds on the server (RewindInstance); the worker need not send a new history")
	default:
		return nil, errors.New("an action of a type Reprise does not know")
	}
	return &ev, nil
}

func checkName(what, name string) error {
	if name == "" {
		return fmt.Errorf("%s is empty", what)
	}
	return store.CheckText(what, name, store.MaxKeyBytes)
}

// complete records a completeOrchestration action in res.
func complete(res *replay.Result, c *pb.CompleteOrchestrationAction) error {
	out, err := optionalPayload("completeOrchestration result", c.Result)
	if err != nil {
		return err
	}
	res.Done, res.Output = true, out
	switch c.OrchestrationStatus {
	case pb.OrchestrationStatus_ORCHESTRATION_STATUS_COMPLETED:
		res.Status = store.StatusCompleted
	case pb.OrchestrationStatus_ORCHESTRATION_STATUS_TERMINATED:
		res.Status = store.StatusTerminated
	case pb.OrchestrationStatus_ORCHESTRATION_STATUS_CANCELED:
		res.Status = store.StatusCanceled
	case pb.OrchestrationStatus_ORCHESTRATION_STATUS_FAILED:
		res.Status, res.Output = store.StatusFailed, nil
		res.Failure = failureOf(c.FailureDetails)
		if res.Failure == nil {
			res.Failure = &history.Failure{Message: "the orchestration failed (its worker gave no failure details)"}
			if d := c.GetDetails().GetValue(); d != "" {
				res.Failure.Message = d
			}
		}
	case pb.OrchestrationStatus_ORCHESTRATION_STATUS_CONTINUED_AS_NEW:
		res.Status, res.Output = store.StatusContinuedAsNew, nil
		if out == nil {
			out = []byte("null")
		}
		can := &replay.ContinueAsNew{Input: out, Version: c.GetNewVersion().GetValue()}
		if err := store.CheckVersion(can.Version); err != nil {
			return err
		}
		for _, e := range c.CarryoverEvents {
			if r := e.GetEventRaised(); r != nil {
				ev := history.New(history.EventRaised, timeOrNow(e))
				ev.Name = r.Name
				if ev.Input, err = optionalPayload("carried event input", r.Input); err != nil {
					return err
				}
				can.Carried = append(can.Carried, ev)
			}
		}
		res.ContinueAsNew = can
	default:
		return fmt.Errorf("completeOrchestration with status %s: give COMPLETED, FAILED, TERMINATED, CANCELED or CONTINUED_AS_NEW", c.OrchestrationStatus)
	}
	return nil
}

func timeOrNow(e *pb.HistoryEvent) time.Time {
	if ts := e.GetTimestamp(); ts != nil && ts.CheckValid() == nil {
		if t := ts.AsTime(); store.CheckTime("", t) == nil {
			return t.UTC()
		}
	}
	return time.Now().UTC()
}

// suspended reports whether the last suspend or resume in evs is a suspend.
func suspended(evs []history.Event) bool {
	s := false
	for _, e := range evs {
		switch e.Type {
		case history.ExecutionSuspended:
			s = true
		case history.ExecutionResumed:
			s = false
		}
	}
	return s
}

// openSubOrchestrations lists the sub-orchestrations created in evs that have no result there.
func openSubOrchestrations(evs []history.Event) []string {
	open := map[int32]string{}
	var order []int32
	for _, e := range evs {
		switch e.Type {
		case history.SubOrchestrationInstanceCreated:
			open[e.ID] = e.InstanceID
			order = append(order, e.ID)
		case history.SubOrchestrationInstanceCompleted, history.SubOrchestrationInstanceFailed:
			delete(open, e.TaskID)
		}
	}
	var ids []string
	for _, id := range order {
		if sub, ok := open[id]; ok {
			ids = append(ids, sub)
			delete(open, id)
		}
	}
	return ids
}

// activityResult is the result event of an activity response.
func activityResult(r *pb.ActivityResponse) (history.Event, error) {
	now := time.Now().UTC()
	if r.FailureDetails != nil {
		ev := history.New(history.TaskFailed, now)
		ev.Failure = failureOf(r.FailureDetails)
		return ev, nil
	}
	out, err := optionalPayload("result", r.Result)
	if err != nil {
		return history.Event{}, err
	}
	ev := history.New(history.TaskCompleted, now)
	ev.Result = out
	return ev, nil
}

// customStatus is the JSON of a custom status: what the SDK sent when it is JSON, else (the Go
// SDK sends the text it was given as it is) that text as a JSON string, so that every reader of
// the instance gets JSON.
func customStatus(v *wrapperspb.StringValue) []byte {
	if v == nil || v.Value == "" {
		return nil
	}
	if json.Valid([]byte(v.Value)) {
		return []byte(v.Value)
	}
	b, _ := json.Marshal(v.Value) // a string always marshals; invalid UTF-8 becomes U+FFFD
	return b
}

// optionalPayload is payload for results: absent or empty stays nil (JSON null).
func optionalPayload(what string, v *wrapperspb.StringValue) ([]byte, error) {
	if v == nil || v.Value == "" {
		return nil, nil
	}
	b, err := payload(what, v)
	if err != nil {
		return nil, errors.New(status.Convert(err).Message())
	}
	return b, nil
}

// failureOf is the failure of the proto's details; nil for none.
func failureOf(d *pb.TaskFailureDetails) *history.Failure {
	if d == nil {
		return nil
	}
	f := &history.Failure{Type: d.ErrorType, Message: d.ErrorMessage, NonRetriable: d.IsNonRetriable,
		StackTrace: d.GetStackTrace().GetValue(), Inner: failureOf(d.InnerFailure)}
	if f.Message == "" && f.Type == "" {
		f.Message = "<no message>"
	}
	return f
}

// entityAction fills ev with the history event of a sendEntityMessage action: a signal, a call, a
// lock request or an unlock, with its target entity in InstanceID (for a lock request, the entity
// of the set at its position, where the request goes first). Entity IDs are checked and take the
// stored form (the name lower-cased). The action's parent fields are not used: the engine sends
// the message from the instance's current execution.
func entityAction(ev *history.Event, m *pb.SendEntityMessageAction, now time.Time) error {
	var err error
	switch x := m.GetEntityMessageType().(type) {
	case *pb.SendEntityMessageAction_EntityOperationSignaled:
		s := x.EntityOperationSignaled
		ev.Type, ev.RequestID, ev.Name = history.EntityOperationSignaled, s.RequestId, s.Operation
		if ev.InstanceID, err = entityID("targetInstanceId", s.GetTargetInstanceId().GetValue()); err != nil {
			return err
		}
		if ev.Input, err = optionalPayload("input", s.Input); err != nil {
			return err
		}
		at, err := timeOf("scheduledTime", s.ScheduledTime)
		if err != nil {
			return errors.New(status.Convert(err).Message())
		}
		if at.After(now) {
			ev.FireAt = at.UTC()
		}
	case *pb.SendEntityMessageAction_EntityOperationCalled:
		c := x.EntityOperationCalled
		ev.Type, ev.RequestID, ev.Name = history.EntityOperationCalled, c.RequestId, c.Operation
		if ev.InstanceID, err = entityID("targetInstanceId", c.GetTargetInstanceId().GetValue()); err != nil {
			return err
		}
		if ev.Input, err = optionalPayload("input", c.Input); err != nil {
			return err
		}
	case *pb.SendEntityMessageAction_EntityLockRequested:
		l := x.EntityLockRequested
		ev.Type, ev.RequestID, ev.Position = history.EntityLockRequested, l.CriticalSectionId, int(l.Position)
		if len(l.LockSet) == 0 {
			return errors.New("entityLockRequested with an empty lockSet: name the entities to lock")
		}
		for i, id := range l.LockSet {
			e, err := entityID(fmt.Sprintf("lockSet[%d]", i), id)
			if err != nil {
				return err
			}
			ev.LockSet = append(ev.LockSet, e)
		}
		if ev.Position < 0 || ev.Position >= len(ev.LockSet) {
			return fmt.Errorf("entityLockRequested position %d is outside its lockSet of %d entities", ev.Position, len(ev.LockSet))
		}
		ev.InstanceID = ev.LockSet[ev.Position]
	case *pb.SendEntityMessageAction_EntityUnlockSent:
		u := x.EntityUnlockSent
		ev.Type, ev.RequestID = history.EntityUnlockSent, u.CriticalSectionId
		if ev.InstanceID, err = entityID("targetInstanceId", u.GetTargetInstanceId().GetValue()); err != nil {
			return err
		}
	default:
		return errors.New("an entity message of a type Reprise does not know")
	}
	if ev.RequestID == "" {
		return errors.New("the request ID (or critical-section ID) is empty: every entity message needs one")
	}
	if err := store.CheckText("request ID", ev.RequestID, store.MaxKeyBytes); err != nil {
		return err
	}
	return store.CheckText("operation name", ev.Name, store.MaxKeyBytes)
}

// entityID checks an entity's instance ID in an action and returns its stored form.
func entityID(what, id string) (string, error) {
	e, err := control.CheckEntityID(id)
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	return e, nil
}

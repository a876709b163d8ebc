package grpcapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/reprise-dev/reprise/internal/control"
	"github.com/reprise-dev/reprise/internal/grpcapi/pb"
	"github.com/reprise-dev/reprise/internal/history"
	"github.com/reprise-dev/reprise/store"
)

// The control RPCs. Payloads arrive and leave as the JSON text the SDKs serialize
// (google.protobuf.StringValue); an absent one is JSON null.

// maxPageSize bounds a page of QueryInstances and ListInstanceIds, as the management API does.
const maxPageSize = 1000

// maxBatch is the proto's bound on InstanceBatch.
const maxBatch = 500

// toStatus maps an error of the control plane (or of the call's context) to a gRPC status with
// its message: the one place that decides which code a client sees.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err // already a status (a refused hub, an argument checked here)
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return status.FromContextError(err).Err()
	}
	code := codes.Internal
	switch control.Classify(err) {
	case control.KindNotFound:
		code = codes.NotFound
	case control.KindExists:
		code = codes.AlreadyExists
	case control.KindFinished, control.KindActive, control.KindNotFailed:
		code = codes.FailedPrecondition
	case control.KindInvalidInput:
		code = codes.InvalidArgument
	case control.KindUnavailable:
		code = codes.Unavailable
	}
	return status.Error(code, err.Error())
}

func invalid(format string, args ...any) error {
	return status.Errorf(codes.InvalidArgument, format, args...)
}

// payload returns the JSON of an optional payload: null when absent or empty (the JS SDK sends
// JSON.stringify(undefined) as ""), else the SDK's text, which must be JSON (the SDKs serialize
// with JSON).
func payload(what string, v *wrapperspb.StringValue) (json.RawMessage, error) {
	if v == nil || v.Value == "" {
		return json.RawMessage("null"), nil
	}
	if !json.Valid([]byte(v.Value)) {
		return nil, invalid("%s is not JSON: payloads are the JSON text the SDK serialized", what)
	}
	return json.RawMessage(v.Value), nil
}

// text returns a stored JSON payload as a StringValue; nil (JSON null, never set) stays absent.
func text(b []byte) *wrapperspb.StringValue {
	if b == nil {
		return nil
	}
	return wrapperspb.String(string(b))
}

func timestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// timeOf returns the time of an optional timestamp (zero when absent), checked.
func timeOf(what string, ts *timestamppb.Timestamp) (time.Time, error) {
	if ts == nil {
		return time.Time{}, nil
	}
	if err := ts.CheckValid(); err != nil {
		return time.Time{}, invalid("%s: %v", what, err)
	}
	return ts.AsTime(), nil
}

// statuses maps the proto's statuses onto the store's; the numbering is the same (both are
// Durable Functions' OrchestrationRuntimeStatus), but an unknown value is refused.
func statuses(in []pb.OrchestrationStatus) ([]store.Status, error) {
	out := make([]store.Status, 0, len(in))
	for _, s := range in {
		if _, ok := pb.OrchestrationStatus_name[int32(s)]; !ok {
			return nil, invalid("unknown orchestration status %d", int32(s))
		}
		out = append(out, store.Status(s))
	}
	return out, nil
}

// reusePolicy maps the proto's replaceable statuses onto the policies the store has. No policy
// is the Durable Functions default (replace a finished instance); an empty set replaces nothing;
// the finished statuses replace a finished instance; those and the active ones replace any.
// Other sets cannot be expressed and are refused rather than approximated.
func reusePolicy(p *pb.OrchestrationIdReusePolicy) (store.ReusePolicy, error) {
	if p == nil {
		return store.ReuseIfFinished, nil
	}
	var finished, active int
	for _, s := range p.ReplaceableStatus {
		switch store.Status(s) {
		case store.StatusCompleted, store.StatusFailed, store.StatusTerminated:
			finished++
		case store.StatusRunning, store.StatusPending, store.StatusSuspended:
			active++
		case store.StatusCanceled, store.StatusContinuedAsNew:
			// Canceled is final but never reached; continued-as-new is never current.
		default:
			return 0, invalid("orchestrationIdReusePolicy: unknown orchestration status %d", int32(s))
		}
	}
	// Duplicates would fool the counts; compare sets.
	seen := map[pb.OrchestrationStatus]bool{}
	for _, s := range p.ReplaceableStatus {
		seen[s] = true
	}
	has := func(ss ...store.Status) bool {
		for _, s := range ss {
			if !seen[pb.OrchestrationStatus(s)] {
				return false
			}
		}
		return true
	}
	allFinished := has(store.StatusCompleted, store.StatusFailed, store.StatusTerminated)
	allActive := has(store.StatusRunning, store.StatusPending, store.StatusSuspended)
	switch {
	case finished == 0 && active == 0:
		return store.ReuseNever, nil
	case allFinished && active == 0:
		return store.ReuseIfFinished, nil
	case allFinished && allActive:
		return store.ReuseAlways, nil
	}
	return 0, invalid("orchestrationIdReusePolicy: Reprise can replace no existing instance (an empty set), a finished one " +
		"(COMPLETED, FAILED and TERMINATED) or any (those and RUNNING, PENDING and SUSPENDED); other sets of replaceable statuses are not supported")
}

// state returns the proto's view of an instance.
func state(inst store.Instance, payloads bool) *pb.OrchestrationState {
	s := &pb.OrchestrationState{
		InstanceId:           inst.ID,
		Name:                 inst.Name,
		OrchestrationStatus:  pb.OrchestrationStatus(inst.Status),
		CreatedTimestamp:     timestamp(inst.CreatedAt),
		LastUpdatedTimestamp: timestamp(inst.UpdatedAt),
		ExecutionId:          wrapperspb.String(inst.ExecutionID),
		FailureDetails:       failureDetails(inst.Failure),
	}
	if inst.ParentID != "" {
		s.ParentInstanceId = wrapperspb.String(inst.ParentID)
	}
	s.Version, s.Tags = optionalText(inst.Version), inst.Tags
	if inst.Status.Terminal() {
		s.CompletedTimestamp = timestamp(inst.UpdatedAt)
	}
	if payloads {
		s.Input, s.Output, s.CustomStatus = text(inst.Input), text(inst.Output), text(inst.CustomStatus)
	}
	return s
}

// failureDetails decodes a stored failure (history.Failure as JSON). An undecodable one still
// says that the instance failed.
func failureDetails(raw []byte) *pb.TaskFailureDetails {
	if len(raw) == 0 {
		return nil
	}
	var f history.Failure
	if err := json.Unmarshal(raw, &f); err != nil {
		return &pb.TaskFailureDetails{ErrorMessage: "the stored failure details cannot be read: " + err.Error()}
	}
	return failure(&f)
}

func failure(f *history.Failure) *pb.TaskFailureDetails {
	if f == nil {
		return nil
	}
	d := &pb.TaskFailureDetails{ErrorType: f.Type, ErrorMessage: f.Message, IsNonRetriable: f.NonRetriable,
		InnerFailure: failure(f.Inner)}
	if f.StackTrace != "" {
		d.StackTrace = wrapperspb.String(f.StackTrace)
	}
	return d
}

// StartInstance creates an instance with the SDK's version and tags, which the instance keeps,
// and its parent trace context, which the ExecutionStarted event carries to the worker. The
// execution ID and request time are the SDK's bookkeeping: Reprise picks the execution ID.
func (s *Service) StartInstance(ctx context.Context, r *pb.CreateInstanceRequest) (*pb.CreateInstanceResponse, error) {
	p, err := s.plane(ctx)
	if err != nil {
		return nil, err
	}
	if r.Name == "" {
		return nil, invalid("name is empty: give the name of the orchestrator to start")
	}
	input, err := payload("input", r.Input)
	if err != nil {
		return nil, err
	}
	at, err := timeOf("scheduledStartTimestamp", r.ScheduledStartTimestamp)
	if err != nil {
		return nil, err
	}
	if !at.After(time.Now()) {
		at = time.Time{} // a start time that has passed (the JS SDK sends the epoch for "now") is now
	}
	reuse, err := reusePolicy(r.OrchestrationIdReusePolicy)
	if err != nil {
		return nil, err
	}
	id, err := p.Start(ctx, control.StartRequest{Name: r.Name, InstanceID: r.InstanceId, Input: input, StartAt: at, Reuse: reuse,
		Version: r.GetVersion().GetValue(), Tags: r.Tags, Trace: traceFromProto(r.ParentTraceContext)})
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.CreateInstanceResponse{InstanceId: id}, nil
}

// GetInstance answers exists=false for an unknown instance, as the SDKs expect, not NOT_FOUND.
func (s *Service) GetInstance(ctx context.Context, r *pb.GetInstanceRequest) (*pb.GetInstanceResponse, error) {
	p, err := s.plane(ctx)
	if err != nil {
		return nil, err
	}
	return answer(p.Get(ctx, r.InstanceId))(r.GetInputsAndOutputs)
}

// answer turns an instance read into a GetInstanceResponse.
func answer(inst store.Instance, err error) func(payloads bool) (*pb.GetInstanceResponse, error) {
	return func(payloads bool) (*pb.GetInstanceResponse, error) {
		if control.Classify(err) == control.KindNotFound {
			return &pb.GetInstanceResponse{Exists: false}, nil
		}
		if err != nil {
			return nil, toStatus(err)
		}
		return &pb.GetInstanceResponse{Exists: true, OrchestrationState: state(inst, payloads)}, nil
	}
}

// WaitForInstanceStart returns once the instance has left Pending; it ends with the call's
// context (the client's deadline or cancellation).
func (s *Service) WaitForInstanceStart(ctx context.Context, r *pb.GetInstanceRequest) (*pb.GetInstanceResponse, error) {
	p, err := s.plane(ctx)
	if err != nil {
		return nil, err
	}
	return answer(p.WaitForStart(ctx, r.InstanceId))(r.GetInputsAndOutputs)
}

// WaitForInstanceCompletion returns once the instance has finished; it ends with the call's
// context.
func (s *Service) WaitForInstanceCompletion(ctx context.Context, r *pb.GetInstanceRequest) (*pb.GetInstanceResponse, error) {
	p, err := s.plane(ctx)
	if err != nil {
		return nil, err
	}
	return answer(p.WaitForCompletion(ctx, r.InstanceId))(r.GetInputsAndOutputs)
}

func (s *Service) RaiseEvent(ctx context.Context, r *pb.RaiseEventRequest) (*pb.RaiseEventResponse, error) {
	p, err := s.plane(ctx)
	if err != nil {
		return nil, err
	}
	data, err := payload("input", r.Input)
	if err != nil {
		return nil, err
	}
	if err := p.Raise(ctx, r.InstanceId, r.Name, data); err != nil {
		return nil, toStatus(err)
	}
	return &pb.RaiseEventResponse{}, nil
}

// TerminateInstance terminates with the SDK's output (JSON) as the instance's output. The plane
// takes a text reason and stores it as a JSON string, so a JSON string output is passed as its
// text and any other JSON as its serialized form (an output of {"a":1} is stored as "{\"a\":1}").
func (s *Service) TerminateInstance(ctx context.Context, r *pb.TerminateRequest) (*pb.TerminateResponse, error) {
	p, err := s.plane(ctx)
	if err != nil {
		return nil, err
	}
	var reason string
	if r.Output != nil {
		if _, err := payload("output", r.Output); err != nil {
			return nil, err
		}
		if json.Unmarshal([]byte(r.Output.Value), &reason) != nil {
			reason = r.Output.Value
		}
	}
	if err := p.Terminate(ctx, r.InstanceId, reason, r.Recursive); err != nil {
		return nil, toStatus(err)
	}
	return &pb.TerminateResponse{}, nil
}

func (s *Service) SuspendInstance(ctx context.Context, r *pb.SuspendRequest) (*pb.SuspendResponse, error) {
	p, err := s.plane(ctx)
	if err != nil {
		return nil, err
	}
	if err := p.Suspend(ctx, r.InstanceId, r.GetReason().GetValue()); err != nil {
		return nil, toStatus(err)
	}
	return &pb.SuspendResponse{}, nil
}

func (s *Service) ResumeInstance(ctx context.Context, r *pb.ResumeRequest) (*pb.ResumeResponse, error) {
	p, err := s.plane(ctx)
	if err != nil {
		return nil, err
	}
	if err := p.Resume(ctx, r.InstanceId, r.GetReason().GetValue()); err != nil {
		return nil, toStatus(err)
	}
	return &pb.ResumeResponse{}, nil
}

func (s *Service) RewindInstance(ctx context.Context, r *pb.RewindInstanceRequest) (*pb.RewindInstanceResponse, error) {
	p, err := s.plane(ctx)
	if err != nil {
		return nil, err
	}
	if err := p.Rewind(ctx, r.InstanceId, r.GetReason().GetValue()); err != nil {
		return nil, toStatus(err)
	}
	return &pb.RewindInstanceResponse{}, nil
}

func (s *Service) RestartInstance(ctx context.Context, r *pb.RestartInstanceRequest) (*pb.RestartInstanceResponse, error) {
	p, err := s.plane(ctx)
	if err != nil {
		return nil, err
	}
	id, err := p.Restart(ctx, r.InstanceId, r.RestartWithNewInstanceId)
	if control.Classify(err) == control.KindExists && !r.RestartWithNewInstanceId {
		// The instance is still running under its ID: the SDKs expect FAILED_PRECONDITION
		// ("cannot be restarted"), not the ALREADY_EXISTS of a start.
		return nil, status.Errorf(codes.FailedPrecondition, "restart %q: the instance has not finished; restart it once it has, or restart it under a new ID", r.InstanceId)
	}
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.RestartInstanceResponse{InstanceId: id}, nil
}

// pageSize checks a requested page size: 0 is the default (100), above maxPageSize is refused.
func pageSize(what string, n int32) (int, error) {
	if n < 0 || n > maxPageSize {
		return 0, invalid("%s %d is out of range: give 1 to %d, or 0 for 100", what, n, maxPageSize)
	}
	return int(n), nil
}

// QueryInstances lists a page of instances, oldest first. taskHubNames, when given, must name
// the hub served; a query of other hubs only has no answer here and is refused.
func (s *Service) QueryInstances(ctx context.Context, r *pb.QueryInstancesRequest) (*pb.QueryInstancesResponse, error) {
	p, err := s.plane(ctx)
	if err != nil {
		return nil, err
	}
	in := r.GetQuery()
	if names := in.GetTaskHubNames(); len(names) > 0 {
		return nil, status.Error(codes.InvalidArgument,
			"query.taskHubNames is not supported: a query covers the task hub of the call (its taskhub metadata); leave taskHubNames empty")
	}
	q := store.Query{IDPrefix: in.GetInstanceIdPrefix().GetValue(), ContinuationToken: in.GetContinuationToken().GetValue(),
		WithoutPayloads: !in.GetFetchInputsAndOutputs()}
	if q.Statuses, err = statuses(in.GetRuntimeStatus()); err != nil {
		return nil, err
	}
	if q.CreatedFrom, err = timeOf("query.createdTimeFrom", in.GetCreatedTimeFrom()); err != nil {
		return nil, err
	}
	if q.CreatedTo, err = timeOf("query.createdTimeTo", in.GetCreatedTimeTo()); err != nil {
		return nil, err
	}
	if q.PageSize, err = pageSize("query.maxInstanceCount", in.GetMaxInstanceCount()); err != nil {
		return nil, err
	}
	page, next, err := p.List(ctx, q)
	if err != nil {
		return nil, toStatus(err)
	}
	out := &pb.QueryInstancesResponse{OrchestrationState: make([]*pb.OrchestrationState, len(page))}
	for i, inst := range page {
		out.OrchestrationState[i] = state(inst, !q.WithoutPayloads)
	}
	if next != "" {
		out.ContinuationToken = wrapperspb.String(next)
	}
	return out, nil
}

// ListInstanceIds lists a page of instance IDs; lastInstanceKey is the continuation token. The
// store filters by creation time, not completion time: with completedTimeFrom/To a page keeps
// the finished instances whose last update (their completion) falls in the bounds, so a page can
// hold fewer IDs than pageSize, or none, and still have a next one.
func (s *Service) ListInstanceIds(ctx context.Context, r *pb.ListInstanceIdsRequest) (*pb.ListInstanceIdsResponse, error) {
	p, err := s.plane(ctx)
	if err != nil {
		return nil, err
	}
	q := store.Query{ContinuationToken: r.GetLastInstanceKey().GetValue(), WithoutPayloads: true}
	if q.Statuses, err = statuses(r.RuntimeStatus); err != nil {
		return nil, err
	}
	if q.PageSize, err = pageSize("pageSize", r.PageSize); err != nil {
		return nil, err
	}
	from, err := timeOf("completedTimeFrom", r.CompletedTimeFrom)
	if err != nil {
		return nil, err
	}
	to, err := timeOf("completedTimeTo", r.CompletedTimeTo)
	if err != nil {
		return nil, err
	}
	page, next, err := p.List(ctx, q)
	if err != nil {
		return nil, toStatus(err)
	}
	out := &pb.ListInstanceIdsResponse{InstanceIds: []string{}}
	for _, inst := range page {
		if !from.IsZero() || !to.IsZero() {
			done := inst.UpdatedAt
			if !inst.Status.Terminal() || (!from.IsZero() && done.Before(from)) || (!to.IsZero() && done.After(to)) {
				continue
			}
		}
		out.InstanceIds = append(out.InstanceIds, inst.ID)
	}
	if next != "" {
		out.LastInstanceKey = wrapperspb.String(next)
	}
	return out, nil
}

// PurgeInstances deletes one finished instance, those that match a filter, or a batch of IDs.
// A recursive purge (sub-orchestrations with their parent) is refused until it is served.
func (s *Service) PurgeInstances(ctx context.Context, r *pb.PurgeInstancesRequest) (*pb.PurgeInstancesResponse, error) {
	p, err := s.plane(ctx)
	if err != nil {
		return nil, err
	}
	// recursive also purges the finished sub-orchestrations, depth first (Plane.PurgeTree).
	purgeOne := func(id string) (int, error) {
		if r.Recursive {
			return p.PurgeTree(ctx, id)
		}
		return 1, p.Purge(ctx, id)
	}
	done := func(n int) *pb.PurgeInstancesResponse {
		return &pb.PurgeInstancesResponse{DeletedInstanceCount: int32(n), IsComplete: wrapperspb.Bool(true)}
	}
	switch req := r.Request.(type) {
	case *pb.PurgeInstancesRequest_InstanceId:
		n, err := purgeOne(req.InstanceId)
		if err != nil {
			return nil, toStatus(err)
		}
		return done(n), nil
	case *pb.PurgeInstancesRequest_PurgeInstanceFilter:
		f := store.PurgeFilter{}
		in := req.PurgeInstanceFilter
		if f.CreatedFrom, err = timeOf("purgeInstanceFilter.createdTimeFrom", in.GetCreatedTimeFrom()); err != nil {
			return nil, err
		}
		if f.CreatedTo, err = timeOf("purgeInstanceFilter.createdTimeTo", in.GetCreatedTimeTo()); err != nil {
			return nil, err
		}
		if f.Statuses, err = statuses(in.GetRuntimeStatus()); err != nil {
			return nil, err
		}
		// The timeout bounds a purge that the server does in steps; this one is one call.
		purge := p.PurgeMatching
		if r.Recursive {
			purge = p.PurgeMatchingTrees
		}
		n, err := purge(ctx, f)
		if err != nil {
			return nil, toStatus(err)
		}
		return done(n), nil
	case *pb.PurgeInstancesRequest_InstanceBatch:
		ids := req.InstanceBatch.GetInstanceIds()
		if len(ids) > maxBatch {
			return nil, invalid("instanceBatch holds %d instance IDs; at most %d are allowed", len(ids), maxBatch)
		}
		// Every ID is checked first, so that a bad one refuses the batch before anything is purged.
		for _, id := range ids {
			if err := control.CheckID(id); err != nil {
				return nil, toStatus(fmt.Errorf("instanceBatch: %w", err))
			}
		}
		// Unknown and unfinished instances are skipped: the count says how many were purged.
		n := 0
		for _, id := range ids {
			m, err := purgeOne(id)
			switch control.Classify(err) {
			case control.KindNotFound, control.KindActive:
				continue
			}
			if err != nil {
				return nil, toStatus(fmt.Errorf("after purging %d of the batch: %w", n, err))
			}
			n += m
		}
		return done(n), nil
	}
	return nil, invalid("purge what? set instanceId, purgeInstanceFilter or instanceBatch")
}

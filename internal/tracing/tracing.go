// Package tracing owns the OpenTelemetry spans of the Durable Task convention: their names,
// kinds and attributes, and the W3C trace contexts stored with instances and tasks.
//
// Spans of durable work are emitted after the fact, once the store has committed the episode
// that made them true, so that a replay or an episode retried after a lost lease emits nothing
// twice. The orchestration span is the one that lives longest: it spans every episode of an
// execution, from its start to its end, possibly across host restarts. Its span ID is therefore
// fixed when the execution starts (derived from the trace and execution IDs, see
// Orchestration) and handed to the tracer provider when the span is finally emitted, through an
// IDGenerator that honours it (see IDs). Children (activities, timers, sub-orchestrations)
// name that span ID as their parent in the meantime.
package tracing

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/reprise-dev/reprise/internal/history"
)

// ScopeName is the instrumentation scope of Reprise's spans.
const ScopeName = "github.com/reprise-dev/reprise"

// Attribute keys of the Durable Task convention.
const (
	KeyType           = attribute.Key("durabletask.type")
	KeyTaskName       = attribute.Key("durabletask.task.name")
	KeyTaskVersion    = attribute.Key("durabletask.task.version")
	KeyInstanceID     = attribute.Key("durabletask.task.instance_id")
	KeyExecutionID    = attribute.Key("durabletask.task.execution_id")
	KeyTaskID         = attribute.Key("durabletask.task.task_id")
	KeyStatus         = attribute.Key("durabletask.task.status")
	KeyFireAt         = attribute.Key("durabletask.fire_at")
	KeyEventTarget    = attribute.Key("durabletask.event.target_instance_id")
	KeyEntityOp       = attribute.Key("durabletask.entity.operation")
	KeyEntityInstance = attribute.Key("durabletask.entity.instance_id")
)

// Tracer emits the durable spans. The zero value and a Tracer of a nil or no-op provider emit
// nothing and cost a nil check.
type Tracer struct {
	t        trace.Tracer // nil: tracing is off
	keepsIDs bool         // the provider honours IDs (see ProviderKeepsIDs)
}

// New returns a Tracer of the provider; nil or a no-op provider turns tracing off.
func New(tp trace.TracerProvider) *Tracer {
	if tp == nil {
		return &Tracer{}
	}
	if _, ok := tp.(noop.TracerProvider); ok {
		return &Tracer{}
	}
	return &Tracer{t: tp.Tracer(ScopeName), keepsIDs: ProviderKeepsIDs(tp)}
}

// On reports whether spans are emitted.
func (t *Tracer) On() bool { return t != nil && t.t != nil }

// KeepsIDs reports whether the orchestration spans get the span IDs fixed at their start, so
// that their children can name them as parent. When not, children name the orchestration's
// own parent instead: the tree is flatter, but no span hangs off one that is never emitted.
func (t *Tracer) KeepsIDs() bool { return t.On() && t.keepsIDs }

// fixedIDsKey carries the IDs a span must be given (see IDs): a fixedIDs.
type fixedIDsKey struct{}

type fixedIDs struct {
	trace trace.TraceID
	span  trace.SpanID
}

// IDs returns an IDGenerator for an SDK TracerProvider that gives the orchestration spans the
// span IDs their children already name as parent, and random IDs to every other span. Without
// it a provider gives those spans IDs of its own, and their children hang off a span that is
// never emitted: ProviderKeepsIDs tells which a provider does.
func IDs() sdktrace.IDGenerator { return idGenerator{} }

type idGenerator struct{}

func (idGenerator) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	if ids, ok := ctx.Value(fixedIDsKey{}).(fixedIDs); ok {
		return ids.trace, ids.span
	}
	var tid trace.TraceID
	for !tid.IsValid() {
		_, _ = rand.Read(tid[:])
	}
	return tid, idGenerator{}.NewSpanID(ctx, tid)
}

func (idGenerator) NewSpanID(ctx context.Context, _ trace.TraceID) trace.SpanID {
	if ids, ok := ctx.Value(fixedIDsKey{}).(fixedIDs); ok {
		return ids.span
	}
	var sid trace.SpanID
	for !sid.IsValid() {
		_, _ = rand.Read(sid[:])
	}
	return sid
}

// ProviderKeepsIDs reports whether tp gives a span the ID asked for through IDs. It starts a
// span and never ends it, so that no exporter sees it.
func ProviderKeepsIDs(tp trace.TracerProvider) bool {
	want := trace.SpanID{0x72, 0x65, 0x70, 0x72, 0x69, 0x73, 0x65, 0x31}
	ctx := context.WithValue(context.Background(), fixedIDsKey{}, fixedIDs{trace.TraceID{1}, want})
	_, span := tp.Tracer(ScopeName).Start(ctx, "reprise.probe")
	return span.SpanContext().SpanID() == want
}

// Parse returns the span context a stored trace context names; an invalid one is not valid.
func Parse(tc *history.TraceContext) trace.SpanContext {
	if tc == nil {
		return trace.SpanContext{}
	}
	return parseTraceParent(tc.TraceParent, tc.TraceState)
}

// parseTraceParent parses a W3C traceparent (version 00, or a later version read as 00).
func parseTraceParent(tp, ts string) trace.SpanContext {
	if len(tp) < 55 || tp[2] != '-' || tp[35] != '-' || tp[52] != '-' || tp[:2] == "ff" || (len(tp) > 55 && (tp[:2] == "00" || tp[55] != '-')) {
		return trace.SpanContext{}
	}
	var cfg trace.SpanContextConfig
	var flags [1]byte
	if _, err := hex.Decode(cfg.TraceID[:], []byte(tp[3:35])); err != nil {
		return trace.SpanContext{}
	}
	if _, err := hex.Decode(cfg.SpanID[:], []byte(tp[36:52])); err != nil {
		return trace.SpanContext{}
	}
	if _, err := hex.Decode(flags[:], []byte(tp[53:55])); err != nil {
		return trace.SpanContext{}
	}
	cfg.TraceFlags = trace.TraceFlags(flags[0]) & trace.FlagsSampled
	cfg.Remote = true
	if ts != "" {
		if state, err := trace.ParseTraceState(ts); err == nil {
			cfg.TraceState = state
		}
	}
	sc := trace.NewSpanContext(cfg)
	if !sc.IsValid() {
		return trace.SpanContext{}
	}
	return sc
}

// Format returns the stored form of a span context; nil for an invalid one.
func Format(sc trace.SpanContext) *history.TraceContext {
	if !sc.IsValid() {
		return nil
	}
	tp := "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-" + sc.TraceFlags().String()
	// SpanID (the protocol's deprecated spanID) is left out: traceparent names the span, and
	// every activity task stores this.
	return &history.TraceContext{TraceParent: tp, TraceState: sc.TraceState().String()}
}

// FromContext returns the stored form of the span context in ctx; nil when there is none.
func FromContext(ctx context.Context) *history.TraceContext {
	return Format(trace.SpanContextFromContext(ctx))
}

// Orchestration is the span of one execution of an orchestration, known from its
// ExecutionStarted event: every episode computes the same one.
type Orchestration struct {
	Parent trace.SpanContext // the caller's span; not valid for none
	Self   trace.SpanContext // the orchestration span: its trace and fixed span ID
}

// OrchestrationOf returns the orchestration span of the execution that start (an
// ExecutionStarted event) starts. Its trace is the parent's, or one derived from the
// execution ID when there is no parent; its span ID is derived from the trace and execution
// IDs, so that every host computes the same one without storing it.
func OrchestrationOf(start history.Event, executionID string) Orchestration {
	parent := Parse(start.Trace)
	sum := sha256.Sum256([]byte(executionID))
	cfg := trace.SpanContextConfig{TraceFlags: trace.FlagsSampled}
	if parent.IsValid() {
		cfg.TraceID, cfg.TraceFlags, cfg.TraceState = parent.TraceID(), parent.TraceFlags(), parent.TraceState()
	} else {
		copy(cfg.TraceID[:], sum[16:])
	}
	h := sha256.Sum256(append(cfg.TraceID[:], executionID...))
	copy(cfg.SpanID[:], h[:8])
	if !cfg.SpanID.IsValid() {
		cfg.SpanID[7] = 1
	}
	return Orchestration{Parent: parent, Self: trace.NewSpanContext(cfg)}
}

// Context returns ctx with the orchestration span as its (remote) parent span.
func (o Orchestration) Context(ctx context.Context) context.Context {
	if !o.Self.IsValid() {
		return ctx
	}
	return trace.ContextWithRemoteSpanContext(ctx, o.Self)
}

// Trace returns the stored form of the orchestration span: the parent trace context of what
// the orchestration schedules.
func (o Orchestration) Trace() *history.TraceContext { return Format(o.Self) }

// Info names an instance for span attributes.
type Info struct {
	Name        string
	Version     string
	InstanceID  string
	ExecutionID string
}

func (i Info) attrs(typ string) []attribute.KeyValue {
	a := []attribute.KeyValue{KeyType.String(typ), KeyTaskName.String(i.Name), KeyInstanceID.String(i.InstanceID)}
	if i.ExecutionID != "" {
		a = append(a, KeyExecutionID.String(i.ExecutionID))
	}
	if i.Version != "" {
		a = append(a, KeyTaskVersion.String(i.Version))
	}
	return a
}

// StartCreate starts the PRODUCER span of a client's start of an orchestration, a child of the
// span in ctx. The returned context carries it: store its FromContext with the instance. End
// the span when the start is done, with End.
func (t *Tracer) StartCreate(ctx context.Context, name, instanceID string) (context.Context, trace.Span) {
	if !t.On() {
		return ctx, nil
	}
	return t.t.Start(ctx, "create_orchestration:"+name, trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(Info{Name: name, InstanceID: instanceID}.attrs("orchestration")...))
}

// StartRaise starts the PRODUCER span of a raised event.
func (t *Tracer) StartRaise(ctx context.Context, event, instanceID string) (context.Context, trace.Span) {
	if !t.On() {
		return ctx, nil
	}
	return t.t.Start(ctx, "orchestration_event:"+event, trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(KeyType.String("event"), KeyTaskName.String(event), KeyEventTarget.String(instanceID)))
}

// StartSignal starts the PRODUCER span of a client's entity signal.
func (t *Tracer) StartSignal(ctx context.Context, op, entityID string) (context.Context, trace.Span) {
	if !t.On() {
		return ctx, nil
	}
	return t.t.Start(ctx, "signal_entity:"+op, trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(KeyType.String("signal_entity"), KeyEntityOp.String(op), KeyEntityInstance.String(entityID)))
}

// End ends a span of this package (nil when tracing is off), recording err as its failure.
func End(span trace.Span, err error) {
	if span == nil {
		return
	}
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// EmitOrchestration emits the SERVER span of an execution that ended: from its start to end,
// with the span ID fixed at its start. failure is the failure message of a Failed execution.
func (t *Tracer) EmitOrchestration(o Orchestration, i Info, status string, started, ended time.Time, failure string) {
	if !t.On() {
		return
	}
	// Without a caller the span is the root of the trace fixed at the start (NewIDs).
	ctx := context.WithValue(context.Background(), fixedIDsKey{}, fixedIDs{o.Self.TraceID(), o.Self.SpanID()})
	if o.Parent.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, o.Parent)
	}
	_, span := t.t.Start(ctx, "orchestration:"+i.Name, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithTimestamp(started), trace.WithAttributes(append(i.attrs("orchestration"), KeyStatus.String(status))...))
	if failure != "" {
		span.SetStatus(codes.Error, failure)
	}
	span.End(trace.WithTimestamp(ended))
}

// EmitSent emits the PRODUCER span of an event (event true: orchestration_event:{name}) or
// entity signal (signal_entity:{name}) an orchestration sent, a child of its orchestration span:
// from the episode's start to its commit.
func (t *Tracer) EmitSent(o Orchestration, i Info, event bool, name, target string, start, end time.Time) {
	if !t.On() {
		return
	}
	spanName, attrs := "signal_entity:"+name, []attribute.KeyValue{KeyType.String("signal_entity"), KeyEntityOp.String(name),
		KeyEntityInstance.String(target), KeyInstanceID.String(i.InstanceID), KeyExecutionID.String(i.ExecutionID)}
	if event {
		spanName, attrs = "orchestration_event:"+name, []attribute.KeyValue{KeyType.String("event"), KeyTaskName.String(name),
			KeyEventTarget.String(target), KeyInstanceID.String(i.InstanceID), KeyExecutionID.String(i.ExecutionID)}
	}
	_, span := t.t.Start(o.Context(context.Background()), spanName, trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithTimestamp(start), trace.WithAttributes(attrs...))
	span.End(trace.WithTimestamp(end))
}

// EmitTimer emits the INTERNAL span of a timer that fired, a child of the orchestration span.
func (t *Tracer) EmitTimer(o Orchestration, i Info, taskID int32, fireAt, firedAt time.Time) {
	if !t.On() {
		return
	}
	start := fireAt
	if firedAt.Before(start) {
		start = firedAt
	}
	_, span := t.t.Start(o.Context(context.Background()), "orchestration:"+i.Name+":timer",
		trace.WithSpanKind(trace.SpanKindInternal), trace.WithTimestamp(start),
		trace.WithAttributes(KeyType.String("timer"), KeyTaskName.String(i.Name), KeyInstanceID.String(i.InstanceID),
			KeyTaskID.Int64(int64(taskID)), KeyFireAt.String(fireAt.UTC().Format(time.RFC3339Nano))))
	span.End(trace.WithTimestamp(firedAt))
}

// StartActivity starts the SERVER span of an activity's execution, a child of the trace
// context its TaskScheduled event carries (the orchestration span). The returned context
// carries the span, for the activity's own spans and outgoing calls.
func (t *Tracer) StartActivity(ctx context.Context, parent *history.TraceContext, name, instanceID string, taskID int32) (context.Context, trace.Span) {
	if !t.On() {
		return ctx, nil
	}
	if sc := Parse(parent); sc.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
	}
	return t.t.Start(ctx, "activity:"+name, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(KeyType.String("activity"), KeyTaskName.String(name), KeyInstanceID.String(instanceID),
			KeyTaskID.Int64(int64(taskID))))
}

// LogAttrs returns the trace_id and span_id of the span in ctx for a log line; none without one.
func LogAttrs(sc trace.SpanContext) []any {
	if !sc.IsValid() {
		return nil
	}
	return []any{"trace_id", sc.TraceID().String(), "span_id", sc.SpanID().String()}
}

// NewChild returns the trace context of a new span under the orchestration span: the CLIENT
// span of an activity or sub-orchestration it schedules, fixed when the task is scheduled and
// stored with it, so that the task's own span (the activity's SERVER span, the
// sub-orchestration's span) names it as parent before it is emitted (EmitTask, at the task's
// completion).
func (o Orchestration) NewChild() *history.TraceContext {
	if !o.Self.IsValid() {
		return nil
	}
	var sid trace.SpanID
	for !sid.IsValid() {
		_, _ = rand.Read(sid[:])
	}
	return Format(trace.NewSpanContext(trace.SpanContextConfig{TraceID: o.Self.TraceID(), SpanID: sid,
		TraceFlags: o.Self.TraceFlags(), TraceState: o.Self.TraceState()}))
}

// clientContext returns the context to start a retroactive span of the orchestration in: a
// child of its span, with the span ID fixed when it was scheduled (fixed, from NewChild) when
// the provider keeps IDs; a child of the orchestration's parent otherwise (see KeepsIDs).
func (t *Tracer) clientContext(o Orchestration, fixed *history.TraceContext) context.Context {
	ctx := context.Background()
	if !t.keepsIDs {
		if o.Parent.IsValid() {
			ctx = trace.ContextWithRemoteSpanContext(ctx, o.Parent)
		}
		return ctx
	}
	if sc := Parse(fixed); sc.IsValid() && sc.TraceID() == o.Self.TraceID() {
		ctx = context.WithValue(ctx, fixedIDsKey{}, fixedIDs{sc.TraceID(), sc.SpanID()})
	}
	return o.Context(ctx)
}

// EmitTask emits the retroactive CLIENT span of an activity (TaskScheduled) or sub-orchestration
// (SubOrchestrationInstanceCreated) the orchestration scheduled, once its completion (done:
// TaskCompleted/Failed, SubOrchestrationInstanceCompleted/Failed) is processed: from the
// scheduling to the completion, Error with the failure's message when it failed.
func (t *Tracer) EmitTask(o Orchestration, i Info, scheduled, done history.Event) {
	if !t.On() {
		return
	}
	typ, name := "activity", "activity:"+scheduled.Name
	attrs := []attribute.KeyValue{KeyType.String(typ), KeyTaskName.String(scheduled.Name), KeyInstanceID.String(i.InstanceID),
		KeyTaskID.Int64(int64(scheduled.ID))}
	if scheduled.Type == history.SubOrchestrationInstanceCreated {
		typ, name = "orchestration", "orchestration:"+scheduled.Name
		attrs = []attribute.KeyValue{KeyType.String(typ), KeyTaskName.String(scheduled.Name), KeyInstanceID.String(scheduled.InstanceID),
			KeyTaskID.Int64(int64(scheduled.ID))}
	}
	if scheduled.Version != "" {
		attrs = append(attrs, KeyTaskVersion.String(scheduled.Version))
	}
	_, span := t.t.Start(t.clientContext(o, scheduled.Trace), name, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithTimestamp(scheduled.Time), trace.WithAttributes(attrs...))
	endFailed(span, done, endTime(scheduled.Time, done.Time))
}

// EmitEntityCall emits the CLIENT span of an entity call the orchestration made
// (EntityOperationCalled), once its reply (EntityOperationCompleted/Failed) is processed.
func (t *Tracer) EmitEntityCall(o Orchestration, i Info, called, reply history.Event) {
	if !t.On() {
		return
	}
	_, span := t.t.Start(t.clientContext(o, nil), "call_entity:"+called.Name, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithTimestamp(called.Time), trace.WithAttributes(KeyType.String("call_entity"), KeyEntityOp.String(called.Name),
			KeyEntityInstance.String(called.InstanceID), KeyTaskID.Int64(int64(called.ID)),
			KeyInstanceID.String(i.InstanceID), KeyExecutionID.String(i.ExecutionID)))
	endFailed(span, reply, endTime(called.Time, reply.Time))
}

// EmitLockRequest emits the INTERNAL span of a critical section's lock request
// (EntityLockRequested), from the request to its grant (EntityLockGranted).
func (t *Tracer) EmitLockRequest(o Orchestration, i Info, requested, granted history.Event) {
	if !t.On() {
		return
	}
	_, span := t.t.Start(t.clientContext(o, nil), "entity:lock_request", trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithTimestamp(requested.Time), trace.WithAttributes(KeyType.String("lock_request"),
			KeyEntityInstance.StringSlice(requested.LockSet), KeyTaskID.Int64(int64(requested.ID)),
			KeyInstanceID.String(i.InstanceID), KeyExecutionID.String(i.ExecutionID)))
	span.End(trace.WithTimestamp(endTime(requested.Time, granted.Time)))
}

// endTime returns when a retroactive span ends: at its completion, never before its start
// (clocks of two hosts may disagree).
func endTime(start, done time.Time) time.Time {
	if done.Before(start) {
		return start
	}
	return done
}

// endFailed ends a retroactive span at end, Error with the failure of done if it has one.
func endFailed(span trace.Span, done history.Event, end time.Time) {
	if done.Failure != nil {
		span.SetStatus(codes.Error, done.Failure.Message)
	}
	span.End(trace.WithTimestamp(end))
}

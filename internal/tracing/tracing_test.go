package tracing

import (
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/reprise-dev/reprise/internal/history"
)

func TestTraceParentRoundTrip(t *testing.T) {
	tc := &history.TraceContext{TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", TraceState: "k=v"}
	sc := Parse(tc)
	if !sc.IsValid() || !sc.IsSampled() || !sc.IsRemote() || sc.TraceState().Get("k") != "v" {
		t.Fatalf("parsed %+v", sc)
	}
	if got := Format(sc); got.TraceParent != tc.TraceParent || got.TraceState != tc.TraceState {
		t.Errorf("formatted %+v, want %+v", got, tc)
	}
	for _, bad := range []string{"", "garbage", "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", "00-4bf92f3577b34da6a3ce929d0e0e473X-00f067aa0ba902b7-01"} {
		if Parse(&history.TraceContext{TraceParent: bad}).IsValid() {
			t.Errorf("%q parsed as valid", bad)
		}
	}
	if Format(Parse(nil)) != nil {
		t.Error("no trace context formats as one")
	}
}

// Every host derives the same orchestration span from the same ExecutionStarted, in the
// caller's trace, and a different one for another execution.
func TestOrchestrationSpanIsDerived(t *testing.T) {
	start := history.Event{Type: history.ExecutionStarted,
		Trace: &history.TraceContext{TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}
	a, b := OrchestrationOf(start, "exec1"), OrchestrationOf(start, "exec1")
	if !a.Self.Equal(b.Self) || !a.Self.IsValid() {
		t.Fatalf("two derivations differ: %v %v", a.Self, b.Self)
	}
	if a.Self.TraceID() != a.Parent.TraceID() || a.Self.SpanID() == a.Parent.SpanID() {
		t.Errorf("orchestration span %v, parent %v", a.Self, a.Parent)
	}
	if c := OrchestrationOf(start, "exec2"); c.Self.SpanID() == a.Self.SpanID() {
		t.Error("two executions share a span ID")
	}
	root := OrchestrationOf(history.Event{Type: history.ExecutionStarted}, "exec1")
	if root.Parent.IsValid() || !root.Self.IsValid() || root.Self.TraceID() == a.Self.TraceID() {
		t.Errorf("without a caller: %+v", root)
	}
}

func TestProviderKeepsIDs(t *testing.T) {
	if !ProviderKeepsIDs(sdktrace.NewTracerProvider(sdktrace.WithIDGenerator(IDs()))) {
		t.Error("a provider with IDs() does not keep the IDs")
	}
	if ProviderKeepsIDs(sdktrace.NewTracerProvider()) {
		t.Error("the default ID generator keeps the IDs")
	}
	if New(noop.NewTracerProvider()).On() || New(nil).On() {
		t.Error("a no-op or nil provider turns tracing on")
	}
	var off *Tracer
	if _, span := off.StartActivity(t.Context(), nil, "a", "i", 0); span != nil {
		t.Error("a nil Tracer started a span")
	}
}

// A task's CLIENT span gets the span ID fixed when the task was scheduled (NewChild), under
// the orchestration span, so that the task's own span, started earlier, names an emitted
// parent; with tracing off nothing is built.
func TestRetroactiveSpansKeepTheirScheduledIDs(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tr := New(sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithIDGenerator(IDs())))
	o := OrchestrationOf(history.Event{Type: history.ExecutionStarted}, "exec1")
	a, b := o.NewChild(), o.NewChild()
	sa, sb := Parse(a), Parse(b)
	if !sa.IsValid() || sa.TraceID() != o.Self.TraceID() || sa.SpanID() == sb.SpanID() || sa.SpanID() == o.Self.SpanID() {
		t.Fatalf("children %v %v of %v", sa, sb, o.Self)
	}
	now := time.Now()
	info := Info{Name: "Orch", InstanceID: "i1", ExecutionID: "exec1"}
	tr.EmitTask(o, info, history.Event{ID: 3, Type: history.TaskScheduled, Name: "Act", Time: now, Trace: a},
		history.Event{Type: history.TaskFailed, TaskID: 3, Time: now.Add(-time.Second), Failure: &history.Failure{Message: "no"}})
	tr.EmitTask(o, info, history.Event{ID: 4, Type: history.TaskScheduled, Name: "Old", Time: now}, // stored before CLIENT spans
		history.Event{Type: history.TaskCompleted, TaskID: 4, Time: now})
	spans := exp.GetSpans()
	if len(spans) != 2 {
		t.Fatalf("%d spans", len(spans))
	}
	s := spans[0]
	if s.SpanContext.SpanID() != sa.SpanID() || s.Parent.SpanID() != o.Self.SpanID() || s.SpanKind != trace.SpanKindClient ||
		s.Name != "activity:Act" || s.Status.Code != codes.Error || s.EndTime.Before(s.StartTime) {
		t.Errorf("CLIENT span %+v", s)
	}
	if old := spans[1]; old.Parent.SpanID() != o.Self.SpanID() || old.SpanContext.SpanID() == sa.SpanID() || !old.SpanContext.IsValid() {
		t.Errorf("CLIENT span of a task without a stored context: %+v", old)
	}

	var off *Tracer
	ev := history.Event{Type: history.TaskScheduled, Trace: a}
	if n := testing.AllocsPerRun(100, func() {
		off.EmitTask(o, info, ev, ev)
		off.EmitEntityCall(o, info, ev, ev)
		off.EmitLockRequest(o, info, ev, ev)
		_ = Orchestration{}.NewChild()
	}); n != 0 {
		t.Errorf("with tracing off the retroactive spans allocate %v times", n)
	}
}

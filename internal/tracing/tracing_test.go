package tracing

import (
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
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

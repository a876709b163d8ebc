package reprise_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/reprise-dev/reprise"
)

// noDuplicateSpanIDs fails the test if two spans share a span ID.
func noDuplicateSpanIDs(t *testing.T, spans tracetest.SpanStubs) {
	t.Helper()
	seen := map[trace.SpanID]string{}
	for _, s := range spans {
		id := s.SpanContext.SpanID()
		if other, ok := seen[id]; ok {
			t.Errorf("spans %s and %s share the span ID %s", other, s.Name, id)
		}
		seen[id] = s.Name
	}
}

// A failed activity's CLIENT span is an Error; a rewind runs it again under a CLIENT span of
// its own, and the rewound execution, whose span was emitted when it failed, does not emit it
// a second time when it completes.
func TestTracesOfARewoundInstance(t *testing.T) {
	exp, tp := newTestTracer()
	var broken atomic.Bool
	broken.Store(true)
	step := reprise.NewActivity("TracedStep", func(ctx context.Context, s string) (string, error) {
		if broken.Load() {
			return "", errors.New("downstream unavailable")
		}
		return s + " done", nil
	})
	orch := reprise.NewOrchestrator("TracedRewind", func(ctx *reprise.OrchestrationContext, _ reprise.None) (string, error) {
		return step.Call(ctx, "x").Await()
	})
	app := startApp(t, []reprise.Definition{step, orch}, reprise.WithTracerProvider(tp), reprise.WithCacheSize(-1))
	ctx := testCtx(t)
	id, err := orch.Start(ctx, app.Client(), reprise.None{})
	if err != nil {
		t.Fatal(err)
	}
	if inst := waitDone(t, app.Client(), id); inst.Status != reprise.StatusFailed {
		t.Fatalf("status %v, want Failed", inst.Status)
	}
	broken.Store(false)
	if err := app.Client().Rewind(ctx, id, "fixed"); err != nil {
		t.Fatal(err)
	}
	waitForHistory(t, app.Client(), id, "ExecutionRewound", 1)
	if inst := waitDone(t, app.Client(), id); inst.Status != reprise.StatusCompleted {
		t.Fatalf("after the rewind: status %v, want Completed", inst.Status)
	}
	if err := app.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	spans := exp.GetSpans()
	noDuplicateSpanIDs(t, spans)
	orchs := ofKind(spansNamed(spans, "orchestration:TracedRewind"), trace.SpanKindServer)
	if len(orchs) != 1 {
		t.Fatalf("%d orchestration spans, want 1 (emitted at the failure, not again after the rewind)", len(orchs))
	}
	if o := orchs[0]; o.Status.Code != codes.Error || attr(o, "durabletask.task.status").AsString() != "Failed" {
		t.Errorf("orchestration span status %v %q, want the failure", o.Status, attr(o, "durabletask.task.status").AsString())
	}
	clients := ofKind(spansNamed(spans, "activity:TracedStep"), trace.SpanKindClient)
	servers := ofKind(spansNamed(spans, "activity:TracedStep"), trace.SpanKindServer)
	if len(clients) != 2 || len(servers) != 2 {
		t.Fatalf("%d CLIENT and %d SERVER activity spans, want 2 each (the failed run and the re-run)", len(clients), len(servers))
	}
	var failed, ok int
	for _, c := range clients {
		if c.Parent.SpanID() != orchs[0].SpanContext.SpanID() {
			t.Errorf("CLIENT span parent %s, want the orchestration span", c.Parent.SpanID())
		}
		if c.Status.Code == codes.Error && c.Status.Description == "downstream unavailable" {
			failed++
		} else if c.Status.Code != codes.Error {
			ok++
		}
		var children int
		for _, s := range servers {
			if s.Parent.SpanID() == c.SpanContext.SpanID() {
				children++
				if (s.Status.Code == codes.Error) != (c.Status.Code == codes.Error) {
					t.Errorf("SERVER span status %v under CLIENT span status %v", s.Status, c.Status)
				}
			}
		}
		if children != 1 {
			t.Errorf("CLIENT span %s has %d SERVER spans, want 1", c.SpanContext.SpanID(), children)
		}
	}
	if failed != 1 || ok != 1 {
		t.Errorf("%d failed and %d successful CLIENT spans, want 1 each", failed, ok)
	}
}

// An instance that fails outside the orchestrator's own end (here: its code is not
// deterministic, found on a replay) still gets its one orchestration span, an Error.
func TestTracesOfANonDeterministicFailure(t *testing.T) {
	exp, tp := newTestTracer()
	var changed atomic.Bool
	release := make(chan struct{})
	gate := reprise.NewActivity("Gate", func(ctx context.Context, _ reprise.None) (string, error) {
		select {
		case <-release:
		case <-ctx.Done():
			return "", ctx.Err()
		}
		return "", nil
	})
	other := reprise.NewActivity("Other", func(ctx context.Context, _ reprise.None) (string, error) { return "", nil })
	orch := reprise.NewOrchestrator("Fickle", func(ctx *reprise.OrchestrationContext, _ reprise.None) (string, error) {
		act := gate
		if changed.Load() { // not deterministic: a replay schedules another activity
			act = other
		}
		return act.Call(ctx, reprise.None{}).Await()
	})
	// No cache: the episode that delivers Gate's result replays the history.
	app := startApp(t, []reprise.Definition{gate, other, orch}, reprise.WithTracerProvider(tp), reprise.WithCacheSize(-1))
	ctx := testCtx(t)
	id, err := orch.Start(ctx, app.Client(), reprise.None{})
	if err != nil {
		t.Fatal(err)
	}
	waitForHistory(t, app.Client(), id, "TaskScheduled", 1)
	changed.Store(true)
	close(release)
	if inst := waitDone(t, app.Client(), id); inst.Status != reprise.StatusFailed {
		t.Fatalf("status %v, want Failed", inst.Status)
	}
	if err := app.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	spans := exp.GetSpans()
	noDuplicateSpanIDs(t, spans)
	orchs := spansNamed(spans, "orchestration:Fickle")
	if len(orchs) != 1 {
		t.Fatalf("%d orchestration spans, want 1", len(orchs))
	}
	o := orchs[0]
	if o.Status.Code != codes.Error || attr(o, "durabletask.task.status").AsString() != "Failed" || o.SpanKind != trace.SpanKindServer {
		t.Errorf("orchestration span %v %v %q, want a SERVER span with the failure", o.SpanKind, o.Status, attr(o, "durabletask.task.status").AsString())
	}
	// The Gate result the failing episode consumed closes its CLIENT span, under that span.
	clients := ofKind(spansNamed(spans, "activity:Gate"), trace.SpanKindClient)
	if len(clients) != 1 || clients[0].Parent.SpanID() != o.SpanContext.SpanID() {
		t.Errorf("Gate CLIENT spans %v, want one under the orchestration span", clients)
	}
}

package reprise_test

import (
	"errors"
	"testing"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/reprise-dev/reprise"
)

// An orchestration's entity calls have CLIENT spans from the call to its reply (Error for a
// failed operation), and its lock request an INTERNAL span from the request to the grant, all
// under its orchestration span, once each although every episode replays the history.
func TestTracesOfEntityCallsAndLocks(t *testing.T) {
	exp, tp := newTestTracer()
	tally := reprise.NewEntity("tally", func(ctx *reprise.EntityContext[int]) (any, error) {
		switch ctx.Operation() {
		case "add":
			ctx.SetState(ctx.State() + 1)
			return ctx.State(), nil
		case "boom":
			return nil, errors.New("tally cannot boom")
		}
		return ctx.State(), nil
	})
	orch := reprise.NewOrchestrator("Tallying", func(ctx *reprise.OrchestrationContext, _ reprise.None) (int, error) {
		a, b := tally.ID("a"), tally.ID("b")
		section, err := ctx.LockEntities(a, b)
		if err != nil {
			return 0, err
		}
		n, err := reprise.CallEntity[int](ctx, a, "add", nil).Await()
		if err != nil {
			return 0, err
		}
		if _, err := reprise.CallEntity[int](ctx, b, "boom", nil).Await(); err == nil {
			return 0, errors.New("boom did not fail")
		}
		section.Release()
		return n, nil
	})
	app := startApp(t, []reprise.Definition{tally, orch}, reprise.WithTracerProvider(tp), reprise.WithCacheSize(-1))
	ctx := testCtx(t)
	id, err := orch.Start(ctx, app.Client(), reprise.None{})
	if err != nil {
		t.Fatal(err)
	}
	if inst := waitDone(t, app.Client(), id); inst.Status != reprise.StatusCompleted {
		t.Fatalf("status %v %s", inst.Status, inst.Output)
	}
	if err := app.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	spans := exp.GetSpans()
	noDuplicateSpanIDs(t, spans)
	orchs := spansNamed(spans, "orchestration:Tallying")
	if len(orchs) != 1 {
		t.Fatalf("%d orchestration spans, want 1", len(orchs))
	}
	o := orchs[0].SpanContext.SpanID()
	locks := spansNamed(spans, "entity:lock_request")
	if len(locks) != 1 {
		t.Fatalf("%d lock_request spans, want 1", len(locks))
	}
	l := locks[0]
	if l.SpanKind != trace.SpanKindInternal || l.Parent.SpanID() != o || attr(l, "durabletask.type").AsString() != "lock_request" ||
		len(attr(l, "durabletask.entity.instance_id").AsStringSlice()) != 2 || l.EndTime.Before(l.StartTime) {
		t.Errorf("lock_request span: kind %v, parent %s (want %s), attributes %v", l.SpanKind, l.Parent.SpanID(), o, l.Attributes)
	}
	for op, wantErr := range map[string]bool{"add": false, "boom": true} {
		calls := spansNamed(spans, "call_entity:"+op)
		if len(calls) != 1 {
			t.Errorf("%d call_entity:%s spans, want 1", len(calls), op)
			continue
		}
		c := calls[0]
		if c.SpanKind != trace.SpanKindClient || c.Parent.SpanID() != o || (c.Status.Code == codes.Error) != wantErr ||
			attr(c, "durabletask.type").AsString() != "call_entity" || attr(c, "durabletask.entity.operation").AsString() != op ||
			attr(c, "durabletask.entity.instance_id").AsString() == "" {
			t.Errorf("call_entity:%s span: kind %v, parent %s (want %s), status %v, attributes %v", op, c.SpanKind, c.Parent.SpanID(),
				o, c.Status, c.Attributes)
		}
		if !c.StartTime.After(l.StartTime) && !c.StartTime.Equal(l.StartTime) {
			t.Errorf("call_entity:%s starts before the lock request", op)
		}
	}
}

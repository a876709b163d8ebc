package reprise_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/reprise-dev/reprise"
)

// The caller's span, as an HTTP client would send it in a traceparent header.
const (
	callerTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerSpan  = "00f067aa0ba902b7"
)

func newTestTracer() (*tracetest.InMemoryExporter, *sdktrace.TracerProvider) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithIDGenerator(reprise.TraceIDGenerator()))
	return exp, tp
}

// tracedHelloSequence is the three-activity sequence of the Durable Functions quickstart; the
// activity opens a span of its own, and block (when set) makes the activity for "Seattle" wait
// for its context to end.
func tracedHelloSequence(block *atomic.Bool, blocked chan<- struct{}) (*reprise.Activity[string, string], *reprise.Orchestrator[reprise.None, []string]) {
	hello := reprise.NewActivity("SayHello", func(ctx context.Context, city string) (string, error) {
		_, span := trace.SpanFromContext(ctx).TracerProvider().Tracer("user").Start(ctx, "user-work:"+city)
		defer span.End()
		if city == "Seattle" && block != nil && block.Load() {
			blocked <- struct{}{}
			<-ctx.Done()
			return "", ctx.Err()
		}
		return "Hello " + city, nil
	})
	seq := reprise.NewOrchestrator("HelloSequence", func(ctx *reprise.OrchestrationContext, _ reprise.None) ([]string, error) {
		var out []string
		for _, city := range []string{"Tokyo", "Seattle", "London"} {
			s, err := hello.Call(ctx, city).Await()
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		return out, nil
	})
	return hello, seq
}

// startRoute adds a user route that starts the sequence from the request's context, as an HTTP
// starter function does, and returns the started instance's ID.
func startRoute(app *reprise.App) {
	app.HandleFunc("POST /api/start", func(w http.ResponseWriter, r *http.Request) {
		id, err := app.Client().StartNew(r.Context(), "HelloSequence", nil)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprint(w, id)
	}, reprise.AuthAnonymous)
}

func startTraced(t *testing.T, app *reprise.App) string {
	t.Helper()
	req := httptest.NewRequest("POST", "/api/start", nil)
	req.Header.Set("traceparent", "00-"+callerTrace+"-"+callerSpan+"-01")
	rec := httptest.NewRecorder()
	app.Handler().ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("start: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

func spansNamed(spans tracetest.SpanStubs, name string) tracetest.SpanStubs {
	var out tracetest.SpanStubs
	for _, s := range spans {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// ofKind returns the spans of one kind: a task's CLIENT span (seen from the orchestration) and
// its SERVER span (its run) share a name.
func ofKind(spans tracetest.SpanStubs, kind trace.SpanKind) tracetest.SpanStubs {
	var out tracetest.SpanStubs
	for _, s := range spans {
		if s.SpanKind == kind {
			out = append(out, s)
		}
	}
	return out
}

func attr(s tracetest.SpanStub, key attribute.Key) attribute.Value {
	for _, kv := range s.Attributes {
		if kv.Key == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}

// checkHelloTree asserts the trace of one hello sequence started by the caller's span: one
// create_orchestration span under the caller, one orchestration span under it, a retroactive
// CLIENT activity span per step under that, from its scheduling to its completion, and under
// each a successful SERVER span of the activity's run, with a user span under it.
func checkHelloTree(t *testing.T, spans tracetest.SpanStubs, id string) {
	t.Helper()
	for _, s := range spans {
		if s.SpanContext.TraceID().String() != callerTrace {
			t.Errorf("span %s is in trace %s, not the caller's", s.Name, s.SpanContext.TraceID())
		}
	}
	creates := spansNamed(spans, "create_orchestration:HelloSequence")
	if len(creates) != 1 {
		t.Fatalf("%d create_orchestration spans, want 1", len(creates))
	}
	create := creates[0]
	if create.Parent.SpanID().String() != callerSpan || create.SpanKind != trace.SpanKindProducer {
		t.Errorf("create_orchestration: parent %s kind %v", create.Parent.SpanID(), create.SpanKind)
	}
	orchs := ofKind(spansNamed(spans, "orchestration:HelloSequence"), trace.SpanKindServer)
	if len(orchs) != 1 {
		t.Fatalf("%d orchestration spans, want 1 (one per execution, not per episode)", len(orchs))
	}
	orch := orchs[0]
	if orch.Parent.SpanID() != create.SpanContext.SpanID() || orch.SpanKind != trace.SpanKindServer {
		t.Errorf("orchestration: parent %s (want %s) kind %v", orch.Parent.SpanID(), create.SpanContext.SpanID(), orch.SpanKind)
	}
	if got := attr(orch, "durabletask.task.instance_id").AsString(); got != id {
		t.Errorf("orchestration instance_id %q, want %q", got, id)
	}
	if got := attr(orch, "durabletask.task.status").AsString(); got != "Completed" {
		t.Errorf("orchestration status %q", got)
	}
	if !orch.StartTime.Before(orch.EndTime) {
		t.Errorf("orchestration span from %v to %v", orch.StartTime, orch.EndTime)
	}
	clients := map[int64]tracetest.SpanStub{} // by task ID
	for _, c := range ofKind(spansNamed(spans, "activity:SayHello"), trace.SpanKindClient) {
		taskID := attr(c, "durabletask.task.task_id").AsInt64()
		if _, ok := clients[taskID]; ok {
			t.Errorf("two CLIENT spans of task %d", taskID)
		}
		clients[taskID] = c
		if c.Parent.SpanID() != orch.SpanContext.SpanID() || c.Status.Code == codes.Error ||
			attr(c, "durabletask.type").AsString() != "activity" || attr(c, "durabletask.task.instance_id").AsString() != id {
			t.Errorf("CLIENT span of task %d: parent %s (want the orchestration span %s), status %v, attributes %v",
				taskID, c.Parent.SpanID(), orch.SpanContext.SpanID(), c.Status, c.Attributes)
		}
		if c.StartTime.Before(orch.StartTime) || c.EndTime.After(orch.EndTime) || c.EndTime.Before(c.StartTime) {
			t.Errorf("CLIENT span of task %d from %v to %v, outside the orchestration's", taskID, c.StartTime, c.EndTime)
		}
	}
	if len(clients) != 3 {
		t.Errorf("CLIENT activity spans of tasks %v, want 3", clients)
	}
	taskIDs := map[int64]bool{}
	for _, a := range ofKind(spansNamed(spans, "activity:SayHello"), trace.SpanKindServer) {
		if a.Status.Code == codes.Error {
			continue // an attempt interrupted by a shutdown
		}
		taskID := attr(a, "durabletask.task.task_id").AsInt64()
		if c := clients[taskID]; a.Parent.SpanID() != c.SpanContext.SpanID() {
			t.Errorf("activity task %d: parent %s, want its CLIENT span %s", taskID, a.Parent.SpanID(), c.SpanContext.SpanID())
		}
		if a.StartTime.Before(orch.StartTime) || a.EndTime.After(orch.EndTime) {
			t.Errorf("activity span outside the orchestration's")
		}
		if taskIDs[taskID] {
			t.Errorf("two successful activity spans of task %d", taskID)
		}
		taskIDs[taskID] = true
		var users int
		for _, u := range spans {
			if u.Parent.SpanID() == a.SpanContext.SpanID() {
				users++
			}
		}
		if users != 1 {
			t.Errorf("activity task %d has %d child spans, want the user's 1", taskID, users)
		}
	}
	if len(taskIDs) != 3 {
		t.Errorf("successful activity spans of tasks %v, want 3", taskIDs)
	}
}

// A starter request's traceparent reaches the orchestration and activity spans, and every
// episode replays the history (no cache) without emitting a span twice.
func TestTracesFollowTheStarterRequest(t *testing.T) {
	exp, tp := newTestTracer()
	hello, seq := tracedHelloSequence(nil, nil)
	logs := &logBuffer{}
	app := startApp(t, []reprise.Definition{hello, seq}, reprise.WithTracerProvider(tp), reprise.WithCacheSize(-1),
		reprise.WithLogger(slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	startRoute(app)
	id := startTraced(t, app)
	if inst := waitDone(t, app.Client(), id); inst.Status != reprise.StatusCompleted {
		t.Fatalf("status %v", inst.Status)
	}
	// The orchestration span is emitted after the commit that ended it, which may be after
	// WaitForCompletion saw the instance done: Shutdown waits for the episode.
	ctx := testCtx(t)
	if err := app.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	spans := exp.GetSpans()
	checkHelloTree(t, spans, id)

	// Every log line of the orchestration and its activities names the instance and the span.
	spanOf := map[string]string{} // span ID → name
	for _, s := range spans {
		spanOf[s.SpanContext.SpanID().String()] = s.Name
	}
	want := map[string]int{"orchestration started": 1, "orchestration completed": 1, "activity started": 3, "activity completed": 3}
	for _, rec := range logs.records(t) {
		msg, _ := rec["msg"].(string)
		if _, ok := want[msg]; !ok {
			continue
		}
		want[msg]--
		if rec["instanceId"] != id || rec["name"] == nil || rec["trace_id"] != callerTrace {
			t.Errorf("log line %v: want instanceId %s, a name and trace_id %s", rec, id, callerTrace)
		}
		wantSpan := "activity:SayHello"
		if strings.HasPrefix(msg, "orchestration") {
			wantSpan = "orchestration:HelloSequence"
		}
		if sid, _ := rec["span_id"].(string); spanOf[sid] != wantSpan {
			t.Errorf("log line %q has span_id %q, of span %q; want the %s span", msg, sid, spanOf[sid], wantSpan)
		}
		if msg == "activity completed" && rec["latency"] == nil {
			t.Errorf("activity completed without its latency: %v", rec)
		}
	}
	for msg, n := range want {
		if n != 0 {
			t.Errorf("%d %q lines missing (negative: too many)", n, msg)
		}
	}
}

// The orchestration span of an instance that a restart interrupts is emitted by the host that
// finishes it, with the span ID its first host's activities name as parent.
func TestTracesAcrossRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "traces.db")
	var block atomic.Bool
	block.Store(true)
	blocked := make(chan struct{}, 1)
	hello, seq := tracedHelloSequence(&block, blocked)
	open := func(tp trace.TracerProvider) *reprise.App {
		app := reprise.NewApp(reprise.WithSQLiteFile(path), reprise.WithLogger(slog.New(slog.DiscardHandler)),
			reprise.WithLeaseDuration(2*time.Second), reprise.WithTracerProvider(tp))
		app.Register(hello, seq)
		startRoute(app)
		if err := app.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		return app
	}
	exp1, tp1 := newTestTracer()
	first := open(tp1)
	id := startTraced(t, first)
	<-blocked // the first activity is done, the second runs
	sctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	_ = first.Shutdown(sctx) // past its deadline: the blocked activity is cancelled and runs again
	cancel()
	block.Store(false)
	if n := len(spansNamed(exp1.GetSpans(), "orchestration:HelloSequence")); n != 0 {
		t.Fatalf("the first host emitted %d orchestration spans before the orchestration ended", n)
	}

	exp2, tp2 := newTestTracer()
	second := open(tp2)
	if inst := waitDone(t, second.Client(), id); inst.Status != reprise.StatusCompleted {
		t.Fatalf("status %v", inst.Status)
	}
	if err := second.Shutdown(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	all := append(exp1.GetSpans(), exp2.GetSpans()...)
	checkHelloTree(t, all, id)
	var fromFirst int
	for _, a := range spansNamed(exp1.GetSpans(), "activity:SayHello") {
		if a.Status.Code != codes.Error {
			fromFirst++
		}
	}
	if fromFirst == 0 {
		t.Error("the first host emitted no successful activity span: the test did not cross the restart")
	}
}

// With no tracer provider and no OTEL_* variables, tracing is off: an activity's context
// still carries the caller's span context, so its own spans join the caller's trace.
func TestTracingOffPropagatesTheCallerContext(t *testing.T) {
	var got atomic.Value
	act := reprise.NewActivity("WhichTrace", func(ctx context.Context, _ reprise.None) (string, error) {
		got.Store(trace.SpanContextFromContext(ctx))
		return "", nil
	})
	orch := reprise.NewOrchestrator("CallWhichTrace", func(ctx *reprise.OrchestrationContext, _ reprise.None) (string, error) {
		return act.Call(ctx, reprise.None{}).Await()
	})
	app := startApp(t, []reprise.Definition{act, orch})
	app.HandleFunc("POST /api/start", func(w http.ResponseWriter, r *http.Request) {
		id, err := orch.Start(r.Context(), app.Client(), reprise.None{})
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprint(w, id)
	}, reprise.AuthAnonymous)
	id := startTraced(t, app)
	waitDone(t, app.Client(), id)
	sc, _ := got.Load().(trace.SpanContext)
	if sc.TraceID().String() != callerTrace || sc.SpanID().String() != callerSpan {
		t.Fatalf("activity context span %s/%s, want the caller's %s/%s", sc.TraceID(), sc.SpanID(), callerTrace, callerSpan)
	}
}

// A sub-orchestration's span is a child of its parent's orchestration span, its activities
// children of its own; a terminated instance's span says so; a timer has a span of its own.
func TestTracesOfSubOrchestrationsTimersAndTermination(t *testing.T) {
	exp, tp := newTestTracer()
	hello, seq := tracedHelloSequence(nil, nil)
	parent := reprise.NewOrchestrator("Parent", func(ctx *reprise.OrchestrationContext, _ reprise.None) ([]string, error) {
		if _, err := ctx.CreateTimer(time.Millisecond).Await(); err != nil {
			return nil, err
		}
		return seq.Call(ctx, reprise.None{}).Await()
	})
	waiter := reprise.NewOrchestrator("Waiter", func(ctx *reprise.OrchestrationContext, _ reprise.None) (string, error) {
		return reprise.WaitForEvent[string](ctx, "never", 0).Await()
	})
	sender := reprise.NewOrchestrator("Sender", func(ctx *reprise.OrchestrationContext, target string) (string, error) {
		if err := ctx.SendEvent(target, "ping", "x"); err != nil {
			return "", err
		}
		// A later episode replays the send: it must not emit its span again.
		_, err := ctx.CreateTimer(time.Millisecond).Await()
		return "sent", err
	})
	app := startApp(t, []reprise.Definition{hello, seq, parent, waiter, sender}, reprise.WithTracerProvider(tp), reprise.WithCacheSize(-1))
	ctx := testCtx(t)
	id, err := parent.Start(ctx, app.Client(), reprise.None{})
	if err != nil {
		t.Fatal(err)
	}
	if inst := waitDone(t, app.Client(), id); inst.Status != reprise.StatusCompleted {
		t.Fatalf("status %v", inst.Status)
	}
	wid, err := waiter.Start(ctx, app.Client(), reprise.None{})
	if err != nil {
		t.Fatal(err)
	}
	waitForHistory(t, app.Client(), wid, "OrchestratorStarted", 1)
	sid, err := sender.Start(ctx, app.Client(), wid)
	if err != nil {
		t.Fatal(err)
	}
	waitDone(t, app.Client(), sid)
	if err := app.Client().Terminate(ctx, wid, "enough"); err != nil {
		t.Fatal(err)
	}
	waitDone(t, app.Client(), wid)
	if err := app.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	spans := exp.GetSpans()
	oneOf := func(name string, kind trace.SpanKind) tracetest.SpanStub {
		t.Helper()
		s := ofKind(spansNamed(spans, name), kind)
		if len(s) != 1 {
			t.Fatalf("%d %s spans of kind %v, want 1", len(s), name, kind)
		}
		return s[0]
	}
	one := func(name string) tracetest.SpanStub {
		t.Helper()
		s := spansNamed(spans, name)
		if len(s) != 1 {
			t.Fatalf("%d %s spans, want 1", len(s), name)
		}
		return s[0]
	}
	// Parent → CLIENT orchestration:HelloSequence (from its creation to its completion) →
	// the sub-orchestration's own span → CLIENT activity spans → SERVER activity spans.
	p := one("orchestration:Parent")
	call, child := oneOf("orchestration:HelloSequence", trace.SpanKindClient), oneOf("orchestration:HelloSequence", trace.SpanKindServer)
	if call.Parent.SpanID() != p.SpanContext.SpanID() || attr(call, "durabletask.type").AsString() != "orchestration" ||
		attr(call, "durabletask.task.instance_id").AsString() != attr(child, "durabletask.task.instance_id").AsString() {
		t.Errorf("sub-orchestration CLIENT span: parent %s (want the parent's span %s), attributes %v", call.Parent.SpanID(),
			p.SpanContext.SpanID(), call.Attributes)
	}
	if child.Parent.SpanID() != call.SpanContext.SpanID() || child.SpanContext.TraceID() != p.SpanContext.TraceID() {
		t.Errorf("sub-orchestration parent %s, want its CLIENT span %s", child.Parent.SpanID(), call.SpanContext.SpanID())
	}
	if call.StartTime.After(child.StartTime) || call.EndTime.Before(call.StartTime) {
		t.Errorf("CLIENT span %v–%v starts after the sub-orchestration's %v", call.StartTime, call.EndTime, child.StartTime)
	}
	clients := map[trace.SpanID]bool{}
	for _, a := range ofKind(spansNamed(spans, "activity:SayHello"), trace.SpanKindClient) {
		clients[a.SpanContext.SpanID()] = true
		if a.Parent.SpanID() != child.SpanContext.SpanID() {
			t.Errorf("activity CLIENT span parent %s, want the sub-orchestration's span %s", a.Parent.SpanID(), child.SpanContext.SpanID())
		}
	}
	for _, a := range ofKind(spansNamed(spans, "activity:SayHello"), trace.SpanKindServer) {
		if !clients[a.Parent.SpanID()] {
			t.Errorf("activity parent %s, want one of the CLIENT spans %v", a.Parent.SpanID(), clients)
		}
	}
	if len(clients) != 3 {
		t.Errorf("%d CLIENT activity spans, want 3", len(clients))
	}
	timer := one("orchestration:Parent:timer")
	if timer.Parent.SpanID() != p.SpanContext.SpanID() || timer.SpanKind != trace.SpanKindInternal || attr(timer, "durabletask.fire_at").AsString() == "" {
		t.Errorf("timer span %+v", timer)
	}
	sent := one("orchestration_event:ping")
	if sent.Parent.SpanID() != one("orchestration:Sender").SpanContext.SpanID() || sent.SpanKind != trace.SpanKindProducer ||
		attr(sent, "durabletask.event.target_instance_id").AsString() != wid {
		t.Errorf("sent event span %+v", sent)
	}
	if w := one("orchestration:Waiter"); attr(w, "durabletask.task.status").AsString() != "Terminated" {
		t.Errorf("terminated instance's span status %q", attr(w, "durabletask.task.status").AsString())
	}
}

// With a provider that gives spans IDs of its own, activities (their CLIENT and SERVER spans)
// name the orchestration's caller (the create_orchestration span) as parent: a flatter tree,
// but no parent that is never emitted.
func TestTracesWithAProviderThatPicksItsOwnIDs(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	hello, seq := tracedHelloSequence(nil, nil)
	app := startApp(t, []reprise.Definition{hello, seq}, reprise.WithTracerProvider(tp))
	startRoute(app)
	id := startTraced(t, app)
	waitDone(t, app.Client(), id)
	if err := app.Shutdown(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	spans := exp.GetSpans()
	creates, orchs := spansNamed(spans, "create_orchestration:HelloSequence"), spansNamed(spans, "orchestration:HelloSequence")
	if len(creates) != 1 || len(orchs) != 1 {
		t.Fatalf("%d create and %d orchestration spans, want 1 each", len(creates), len(orchs))
	}
	emitted := map[trace.SpanID]bool{}
	for _, s := range spans {
		emitted[s.SpanContext.SpanID()] = true
	}
	acts := spansNamed(spans, "activity:SayHello")
	if len(acts) != 6 {
		t.Fatalf("%d activity spans, want 3 CLIENT and 3 SERVER", len(acts))
	}
	for _, a := range acts {
		if a.Parent.SpanID() != creates[0].SpanContext.SpanID() || !emitted[a.Parent.SpanID()] {
			t.Errorf("activity parent %s, want the create_orchestration span %s", a.Parent.SpanID(), creates[0].SpanContext.SpanID())
		}
	}
}

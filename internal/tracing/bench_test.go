package tracing

import (
	"context"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/reprise-dev/reprise/internal/history"
)

type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

// BenchmarkHelloSpans is the tracing work of one hello-sequence instance: its start, its
// orchestration span and three activities' CLIENT and SERVER spans, off and on (batch processor, discarding exporter).
func BenchmarkHelloSpans(b *testing.B) {
	caller := &history.TraceContext{TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
	run := func(b *testing.B, tr *Tracer) {
		b.ReportAllocs()
		ctx := Parse(caller)
		base := context.Background()
		if ctx.IsValid() {
			base = Orchestration{Self: ctx}.Context(base)
		}
		now := time.Now()
		for b.Loop() {
			c, span := tr.StartCreate(base, "Hello", "instance")
			start := history.Event{Type: history.ExecutionStarted, Trace: FromContext(c)}
			End(span, nil)
			o := OrchestrationOf(start, "execution")
			info := Info{Name: "Hello", InstanceID: "instance", ExecutionID: "execution"}
			for i := range 3 {
				parent := o.Trace()
				if tr.KeepsIDs() {
					parent = o.NewChild() // the CLIENT span's, stored with the task
				}
				sched := history.Event{ID: int32(i), Type: history.TaskScheduled, Name: "SayHello", Time: now, Trace: parent}
				_, span := tr.StartActivity(context.Background(), parent, "SayHello", "instance", int32(i))
				End(span, nil)
				tr.EmitTask(o, info, sched, history.Event{Type: history.TaskCompleted, TaskID: int32(i), Time: now})
			}
			tr.EmitOrchestration(o, Info{Name: "Hello", InstanceID: "instance", ExecutionID: "execution"}, "Completed", now, now, "")
		}
	}
	b.Run("off", func(b *testing.B) { run(b, New(nil)) })
	b.Run("on", func(b *testing.B) {
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discard{}), sdktrace.WithIDGenerator(IDs()))
		defer tp.Shutdown(context.Background())
		run(b, New(tp))
	})
}

package metrics

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

func TestNilRecordsNothing(t *testing.T) {
	var m *Metrics
	m.OrchestrationStarted("x")
	m.OrchestrationCompleted("x", "Completed")
	m.Episode("x", time.Second)
	m.Replay("x", 3)
	m.Activity("a", Failed, 0, time.Second)
	m.TimerFired(time.Second)
	m.Retry("a")
	m.LeaseLost(KindEntity)
	m.Transaction(2, time.Millisecond)
	m.StreamConnected(1)
	m.EntityBatch("e", 1, 1)
	if m.Totals() != (Totals{}) {
		t.Error("a nil Metrics has totals")
	}
}

// TestRecentKeepsTheLastSamples: the ring keeps the last size samples, oldest first, each with
// what finished since the one before.
func TestRecentKeepsTheLastSamples(t *testing.T) {
	m, err := New(noop.NewMeterProvider())
	if err != nil {
		t.Fatal(err)
	}
	backlog := 0
	r := &Recent{m: m, interval: time.Second, ring: make([]Sample, 3),
		read: func(context.Context) (Backlog, error) { return Backlog{Orchestration: backlog, Activity: 1}, nil }}
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	for i := range 5 {
		for range i {
			m.OrchestrationCompleted("o", Completed)
		}
		m.Activity("a", Failed, 0, 0)
		backlog = i
		r.sample(t0.Add(time.Duration(i) * time.Second))
	}
	got := r.Samples()
	if len(got) != 3 {
		t.Fatalf("%d samples kept, want 3", len(got))
	}
	for j, s := range got {
		i := j + 2
		want := Sample{At: t0.Add(time.Duration(i) * time.Second), Completed: int64(i), Failed: 1, Backlog: int64(i + 1)}
		if s != want {
			t.Errorf("sample %d = %+v, want %+v", j, s, want)
		}
	}
}

// TestNames checks the instruments' names and kinds as a reader sees them, and that a name's
// attribute set is the one cached.
func TestNames(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	m, err := New(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	if err != nil {
		t.Fatal(err)
	}
	m.Activity("a", Completed, time.Millisecond, time.Millisecond)
	m.Activity("a", Completed, time.Millisecond, time.Millisecond)
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	units := map[string]string{}
	for _, sm := range rm.ScopeMetrics {
		for _, x := range sm.Metrics {
			units[x.Name] = x.Unit
			if s, ok := x.Data.(metricdata.Sum[int64]); ok && x.Name == "reprise.activities" {
				if len(s.DataPoints) != 1 || s.DataPoints[0].Value != 2 {
					t.Errorf("reprise.activities points %+v, want one of 2", s.DataPoints)
				}
			}
		}
	}
	for name, unit := range map[string]string{"reprise.activities": "{activity}", "reprise.activity.duration": "s", "reprise.activity.schedule_to_start": "s"} {
		if units[name] != unit {
			t.Errorf("%s: unit %q, want %q (seen: %v)", name, units[name], unit, units)
		}
	}
}

// BenchmarkHelloSequenceHooks is the metrics' cost of one hello sequence: its start, four
// episodes, three activities, its completion and about eight store transactions.
func BenchmarkHelloSequenceHooks(b *testing.B) {
	m, err := New(sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader())))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		m.OrchestrationStarted("hello_sequence_orchestrator")
		for range 4 {
			m.Episode("hello_sequence_orchestrator", time.Millisecond)
		}
		for range 3 {
			m.Activity("say_hello", Completed, time.Millisecond, time.Microsecond)
		}
		m.OrchestrationCompleted("hello_sequence_orchestrator", Completed)
		for range 8 {
			m.Transaction(4, time.Millisecond)
		}
	}
}

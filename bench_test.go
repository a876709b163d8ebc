package reprise_test

import (
	"context"
	"flag"
	"testing"

	"github.com/reprise-dev/reprise/internal/bench"
)

// Benchmarks of the engine on a SQLite file, durable (fsync on every commit): the scenarios of
// `reprise bench` (internal/bench), as Go benchmarks, for profiling. Run them with
//
//	go test -run '^$' -bench . -benchtime 1x
//
// and see docs/benchmarks.md for the figures and what limits them.

var benchInstances = flag.Int("instances", 0, "size of each run (0: the scenario's default; see reprise help bench)")

func runScenario(b *testing.B, name string) {
	for b.Loop() {
		res, err := bench.Run(context.Background(), name, bench.Config{N: *benchInstances})
		if err != nil {
			b.Fatal(err)
		}
		if res.OrchestrationsPerSecond > 1 {
			b.ReportMetric(res.OrchestrationsPerSecond, "orchestrations/s")
		}
		b.ReportMetric(res.ActivitiesPerSecond, "activities/s")
		if res.Latency != nil {
			b.ReportMetric(res.Latency.P50, "p50-ms")
			b.ReportMetric(res.Latency.P99, "p99-ms")
		}
		b.ReportMetric(res.CPUMsPerOrchestration, "cpu-ms/orchestration")
		if tx := res.Transactions; tx != nil {
			b.ReportMetric(tx.PerOrchestration, "tx/orchestration")
			b.ReportMetric(tx.SyncsPerOrchestration, "fsyncs/orchestration")
			if tx.StepUnit != "" {
				b.ReportMetric(tx.SyncsPerStep, "fsyncs/step")
			}
		}
	}
}

func BenchmarkHelloSequence(b *testing.B) { runScenario(b, "hello-sequence") }
func BenchmarkFanOut(b *testing.B)        { runScenario(b, "fan-out") }
func BenchmarkLongSequence(b *testing.B)  { runScenario(b, "long-sequence") }
func BenchmarkTimers(b *testing.B)        { runScenario(b, "timers") }
func BenchmarkIdle(b *testing.B)          { runScenario(b, "idle") }
func BenchmarkLatency(b *testing.B)       { runScenario(b, "latency") }

package reprise_test

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/reprise-dev/reprise"
)

// Benchmarks of the engine on a SQLite file, durable (fsync on every commit). Run them with
//
//	go test -run '^$' -bench . -benchtime 1x
//
// and see docs/benchmarks.md for the figures and what limits them.

var benchInstances = flag.Int("instances", 10000, "instances of the hello-sequence benchmark; also the length of the long-sequence and fan-out benchmarks")

func benchApp(b *testing.B, defs ...reprise.Definition) *reprise.App {
	b.Helper()
	app := reprise.NewApp(
		reprise.WithSQLiteFile(filepath.Join(b.TempDir(), "bench.db")),
		reprise.WithLogger(slog.New(slog.DiscardHandler)),
		reprise.WithCacheSize(20000),
		reprise.WithMaxConcurrentOrchestrations(1000),
		reprise.WithMaxConcurrentActivities(1000),
	)
	app.Register(defs...)
	if err := app.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		app.Shutdown(ctx)
	})
	return app
}

// startMany starts n instances from 64 goroutines, as concurrent HTTP starters would.
func startMany(b *testing.B, n int, start func(ctx context.Context) (string, error)) []string {
	ids := make([]string, n)
	var wg sync.WaitGroup
	next := make(chan int)
	for range 64 {
		wg.Go(func() {
			for i := range next {
				id, err := start(context.Background())
				if err != nil {
					b.Error(err)
					return
				}
				ids[i] = id
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return ids
}

func BenchmarkHelloSequence(b *testing.B) {
	app := benchApp(b, sayHello, helloSequence)
	c := app.Client()
	n := *benchInstances
	for b.Loop() {
		start := time.Now()
		ids := startMany(b, n, func(ctx context.Context) (string, error) {
			return helloSequence.Start(ctx, c, reprise.None{})
		})
		for _, id := range ids {
			inst, err := c.WaitForCompletion(context.Background(), id)
			if err != nil {
				b.Fatal(err)
			}
			if string(inst.Output) != `["Hello Tokyo!","Hello Seattle!","Hello London!"]` {
				b.Fatalf("%s: %s %s", id, inst.Status, inst.Output)
			}
		}
		elapsed := time.Since(start).Seconds()
		b.ReportMetric(float64(n)/elapsed, "orchestrations/s")
		b.ReportMetric(float64(3*n)/elapsed, "activities/s")
	}
}

func BenchmarkLatency(b *testing.B) {
	app := benchApp(b, sayHello, helloSequence)
	c := app.Client()
	ctx := context.Background()
	var lat []time.Duration
	for b.Loop() {
		start := time.Now()
		id, err := helloSequence.Start(ctx, c, reprise.None{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.WaitForCompletion(ctx, id); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

var inc = reprise.NewActivity("inc", func(ctx context.Context, n int) (int, error) { return n + 1, nil })

func BenchmarkLongSequence(b *testing.B) {
	long := reprise.NewOrchestrator("long_sequence", func(ctx *reprise.OrchestrationContext, n int) (int, error) {
		v := 0
		for range n {
			var err error
			if v, err = inc.Call(ctx, v).Await(); err != nil {
				return 0, err
			}
		}
		return v, nil
	})
	app := benchApp(b, inc, long)
	benchOne(b, app, long, *benchInstances)
}

func BenchmarkFanOut(b *testing.B) {
	fan := reprise.NewOrchestrator("fan_out", func(ctx *reprise.OrchestrationContext, n int) (int, error) {
		tasks := make([]*reprise.Task[int], n)
		for i := range tasks {
			tasks[i] = inc.Call(ctx, 0)
		}
		ones, err := reprise.All(ctx, tasks...).Await()
		return len(ones), err
	})
	app := benchApp(b, inc, fan)
	benchOne(b, app, fan, *benchInstances)
}

// benchOne runs one orchestration whose output must be n.
func benchOne(b *testing.B, app *reprise.App, o *reprise.Orchestrator[int, int], n int) {
	ctx := context.Background()
	for b.Loop() {
		start := time.Now()
		id, err := o.Start(ctx, app.Client(), n)
		if err != nil {
			b.Fatal(err)
		}
		inst, err := app.Client().WaitForCompletion(ctx, id)
		if err != nil {
			b.Fatal(err)
		}
		if string(inst.Output) != fmt.Sprint(n) {
			b.Fatalf("output %s, want %d", inst.Output, n)
		}
		b.ReportMetric(time.Since(start).Seconds(), "s/orchestration")
		b.ReportMetric(float64(n)/time.Since(start).Seconds(), "activities/s")
	}
}

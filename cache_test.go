package reprise_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reprise-dev/reprise"
)

// With a cache of one execution and 50 instances in flight, nearly every episode misses the cache
// and replays the history; all instances must still complete correctly, and no orchestrator
// goroutine may outlive the App.
func TestCacheEvictionReplaysAndDoesNotLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	var replays atomic.Int32
	greet := reprise.NewActivity("greet", func(ctx context.Context, city string) (string, error) {
		return "Hello " + city + "!", nil
	})
	seq := reprise.NewOrchestrator("evicted_sequence", func(ctx *reprise.OrchestrationContext, _ reprise.None) ([]string, error) {
		var out []string
		for _, city := range []string{"Tokyo", "Seattle", "London"} {
			if ctx.IsReplaying() {
				replays.Add(1)
			}
			g, err := greet.Call(ctx, city).Await()
			if err != nil {
				return nil, err
			}
			out = append(out, g)
		}
		return out, nil
	})
	app := reprise.NewApp(
		reprise.WithSQLiteFile(filepath.Join(t.TempDir(), "cache.db")),
		reprise.WithCacheSize(1),
		reprise.WithLogger(slog.New(slog.DiscardHandler)),
	)
	app.Register(greet, seq)
	ctx := testCtx(t)
	if err := app.Start(ctx); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, 50)
	for i := range ids {
		id, err := seq.Start(ctx, app.Client(), reprise.None{})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id
	}
	for _, id := range ids {
		got := output[[]string](t, waitDone(t, app.Client(), id))
		if strings.Join(got, ",") != "Hello Tokyo!,Hello Seattle!,Hello London!" {
			t.Fatalf("%s: %v", id, got)
		}
	}
	if replays.Load() == 0 {
		t.Fatal("no episode replayed: the cache bound was not applied")
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := app.Shutdown(shutdownCtx); err != nil {
		t.Fatal(err)
	}
	// Goroutines exit asynchronously after Shutdown returns; nothing signals the last one.
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("%d goroutines before, %d after shutdown:\n%s", before, runtime.NumGoroutine(), buf[:n])
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("%d episodes replayed; goroutines %d before, %d after", replays.Load(), before, runtime.NumGoroutine())
}

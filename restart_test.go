package reprise_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/reprise-dev/reprise"
)

func appOn(t *testing.T, path string, defs ...reprise.Definition) *reprise.App {
	t.Helper()
	app := reprise.NewApp(reprise.WithSQLiteFile(path), reprise.WithLogger(slog.New(slog.DiscardHandler)),
		reprise.WithLeaseDuration(2*time.Second))
	app.Register(defs...)
	if err := app.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return app
}

// A durable timer set before a shutdown fires after the restart.
func TestTimerFiresAfterRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "timer.db")
	waiter := reprise.NewOrchestrator("timer_across_restart", func(ctx *reprise.OrchestrationContext, _ reprise.None) (string, error) {
		_, err := ctx.CreateTimer(300 * time.Millisecond).Await()
		return "fired", err
	})
	ctx := testCtx(t)
	first := appOn(t, path, waiter)
	id, err := waiter.Start(ctx, first.Client(), reprise.None{})
	if err != nil {
		t.Fatal(err)
	}
	waitForHistory(t, first.Client(), id, "TimerCreated", 1)
	if err := first.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	second := appOn(t, path, waiter)
	defer second.Shutdown(ctx)
	inst := waitDone(t, second.Client(), id)
	if got := output[string](t, inst); got != "fired" {
		t.Fatalf("output %q", got)
	}
}

// Shutdown waits for a running activity; past its deadline it cancels the activity's context and
// releases the lease, so another App runs the activity at once.
func TestGracefulShutdown(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shutdown.db")
	started := make(chan struct{}, 2)
	release := make(chan struct{})
	canceled := make(chan struct{}, 1)
	slow := reprise.NewActivity("slow", func(ctx context.Context, mode string) (string, error) {
		started <- struct{}{}
		if mode == "block" {
			select {
			case <-ctx.Done():
				canceled <- struct{}{}
				return "", ctx.Err()
			case <-release:
			}
		}
		return "finished " + mode, nil
	})
	orch := reprise.NewOrchestrator("shutdown_orch", func(ctx *reprise.OrchestrationContext, mode string) (string, error) {
		return slow.Call(ctx, mode).Await()
	})
	ctx := testCtx(t)

	// 1. A running activity finishes within the deadline and its result is committed.
	first := appOn(t, path, slow, orch)
	id1, _ := orch.Start(ctx, first.Client(), "block", reprise.WithInstanceID("finishes"))
	<-started
	// Release the activity a little later, so Shutdown is usually already waiting for it (the
	// assertions hold either way: nothing signals that Shutdown has begun).
	go func() { time.Sleep(20 * time.Millisecond); close(release) }()
	if err := first.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown with time to finish: %v", err)
	}

	// 2. An activity still running at the deadline is cancelled, and its lease is released.
	release = make(chan struct{})
	second := appOn(t, path, slow, orch)
	id2, _ := orch.Start(ctx, second.Client(), "block", reprise.WithInstanceID("interrupted"))
	<-started
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	err := second.Shutdown(short)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("shutdown past the deadline: %v, want DeadlineExceeded", err)
	}
	select {
	case <-canceled:
	default:
		t.Fatal("the running activity's context was not cancelled at the shutdown deadline")
	}

	// A new App completes both; the interrupted activity runs again without waiting for the
	// lease to expire (the lease duration is 2s; the test would still pass, but slower).
	close(release)
	third := appOn(t, path, slow, orch)
	defer third.Shutdown(ctx)
	if got := output[string](t, waitDone(t, third.Client(), id1)); got != "finished block" {
		t.Fatalf("%s: %q", id1, got)
	}
	if got := output[string](t, waitDone(t, third.Client(), id2)); got != "finished block" {
		t.Fatalf("%s: %q", id2, got)
	}
}

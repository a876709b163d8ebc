package engine_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reprise-dev/reprise/internal/engine"
	"github.com/reprise-dev/reprise/internal/replay"
	"github.com/reprise-dev/reprise/store"
)

// TestShutdownReturnsAtDeadline: an activity that ignores its context does not hold Shutdown
// past its deadline; its late result is refused (the lease was released), so the activity runs
// again on the next host instead of being lost or recorded twice.
func TestShutdownReturnsAtDeadline(t *testing.T) {
	st := openSQLite(t)
	running := make(chan struct{})
	release := make(chan struct{})
	var finished atomic.Bool
	reg := registry{
		orchestrators: map[string]replay.Func{"one": func(c *replay.Context) ([]byte, error) {
			return c.CallActivity("stubborn", "", nil, nil).Await()
		}},
		activities: map[string]engine.ActivityFunc{"stubborn": func(ctx context.Context, _ []byte) ([]byte, error) {
			close(running)
			<-release // ignores ctx
			finished.Store(true)
			return []byte(`"late"`), nil
		}},
	}
	e := engine.New(engine.Options{Store: st, Registry: reg, PollInterval: 50 * time.Millisecond})
	e.Start()
	defer close(release)
	start(t, st, "one", "s", nil)
	<-running

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.Shutdown(ctx) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Shutdown = %v, want the deadline's error", err)
		}
	case <-time.After(10 * time.Second): // a hang, not a timing bound
		t.Fatal("Shutdown did not return at its deadline: it waits for an activity that ignores its context")
	}
	if finished.Load() {
		t.Fatal("the activity finished before Shutdown returned; the test proves nothing")
	}

	// The released task is free at once for the next host.
	work, err := st.ClaimActivities(t.Context(), "next", store.Names{"stubborn"}, 10, time.Minute)
	if err != nil || len(work) != 1 {
		t.Fatalf("the next host claimed %d tasks (%v), want the one left running at shutdown", len(work), err)
	}
}

// TestDeadlockedOrchestrator: an orchestrator that blocks outside Await is given up after the
// deadlock timeout with an error naming it and its instance; its slot is freed (another
// instance runs on the engine's only slot), its lease is no longer renewed, so the instance is
// tried again after the lease expires, and the stuck goroutine, once it wakes, disturbs nothing.
func TestDeadlockedOrchestrator(t *testing.T) {
	st := openSQLite(t)
	logs := &logRecorder{}
	unblock := make(chan struct{})
	var attempts atomic.Int32
	reg := registry{
		orchestrators: map[string]replay.Func{
			"stuck": func(c *replay.Context) ([]byte, error) {
				if !c.IsReplaying() && attempts.Add(1) == 1 {
					<-unblock // blocks outside Await: a channel, as a sleep or a lock would
				}
				return c.CallActivity("echo", "", []byte(`"ok"`), nil).Await()
			},
			"quick": func(c *replay.Context) ([]byte, error) {
				return c.CallActivity("echo", "", []byte(`"quick"`), nil).Await()
			},
		},
		activities: map[string]engine.ActivityFunc{"echo": func(_ context.Context, in []byte) ([]byte, error) { return in, nil }},
	}
	newEngine(t, engine.Options{
		Store: st, Registry: reg, Logger: slog.New(logs),
		MaxConcurrentOrchestrations: 1,
		LeaseDuration:               time.Second,
		DeadlockTimeout:             100 * time.Millisecond,
	})
	defer close(unblock)

	start(t, st, "stuck", "s", nil)
	line := logs.wait(t, 10*time.Second, "does not yield")
	for _, want := range []string{`orchestrator "stuck"`, `instance "s"`, "did not yield within 100ms"} {
		if !strings.Contains(line, want) {
			t.Fatalf("the deadlock log %q does not say %s", line, want)
		}
	}
	// The only orchestration slot is free again.
	start(t, st, "quick", "q", nil)
	if inst := waitDone(t, st, "q", 10*time.Second); inst.Status != store.StatusCompleted {
		t.Fatalf("q is %s, want Completed on the slot the stuck orchestrator gave back", inst.Status)
	}
	// The stuck instance's lease expires and it runs again, to completion.
	inst := waitDone(t, st, "s", 20*time.Second)
	if inst.Status != store.StatusCompleted || string(inst.Output) != `"ok"` {
		t.Fatalf("s is %s with output %s, want Completed with \"ok\"", inst.Status, inst.Output)
	}
	if n := attempts.Load(); n != 2 {
		t.Fatalf("the stuck orchestrator started %d times live, want 2 (the stuck one and one retry)", n)
	}
	checkOnce(t, st, "s")
}

// hangingUnclaimed is a store whose look for unclaimed work hangs until its context ends, and
// says how it ended.
type hangingUnclaimed struct {
	store.Store
	entered chan struct{}
	ended   chan error
}

func (h hangingUnclaimed) Unclaimed(ctx context.Context, _, _ store.Names) ([]store.Unclaimed, error) {
	h.entered <- struct{}{}
	<-ctx.Done()
	h.ended <- ctx.Err()
	return nil, ctx.Err()
}

// TestShutdownEndsTheUnclaimedLook: a look for unclaimed work in flight on a hanging store ends
// with Shutdown (its context is cancelled), rather than holding Shutdown until its own timeout
// (the unclaimed interval, 10 s by default).
func TestShutdownEndsTheUnclaimedLook(t *testing.T) {
	st := hangingUnclaimed{Store: openSQLite(t), entered: make(chan struct{}, 1), ended: make(chan error, 1)}
	e := engine.New(engine.Options{Store: st, Registry: registry{}, PollInterval: 50 * time.Millisecond,
		UnclaimedInterval: 2 * time.Second}) // the first look comes after one interval
	e.Start()
	<-st.entered
	if err := e.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-st.ended; !errors.Is(err, context.Canceled) {
		t.Fatalf("the look in flight ended with %v, want it cancelled by Shutdown", err)
	}
}

package engine_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reprise-dev/reprise/internal/control"
	"github.com/reprise-dev/reprise/internal/engine"
	"github.com/reprise-dev/reprise/internal/history"
	"github.com/reprise-dev/reprise/internal/replay"
	"github.com/reprise-dev/reprise/store"
)

// mergeCounter counts the activity completions through the inbox (CompleteActivity) and the
// merged completions (CommitEpisode with Completes) that succeeded or were refused as busy.
type mergeCounter struct {
	store.Store
	completed, merged, busy atomic.Int64
}

func (c *mergeCounter) CompleteActivity(ctx context.Context, taskID int64, lease store.Lease, result store.Message) error {
	err := c.Store.CompleteActivity(ctx, taskID, lease, result)
	if err == nil {
		c.completed.Add(1)
	}
	return err
}

func (c *mergeCounter) CommitEpisode(ctx context.Context, e store.Episode) error {
	err := c.Store.CommitEpisode(ctx, e)
	if e.Completes != nil {
		switch {
		case err == nil:
			c.merged.Add(1)
		case errors.Is(err, store.ErrInstanceBusy):
			c.busy.Add(1)
		}
	}
	return err
}

// TestMergedCompletions: an activity whose instance's execution is cached completes with the
// instance's next episode in one commit, so a sequential chain never completes an activity
// through the inbox; without the cache, or without local dispatch, every completion goes
// through the inbox. Either way each activity runs once and each result is applied once.
func TestMergedCompletions(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   engine.Options
		merged bool
	}{
		{"merged", engine.Options{}, true},
		{"no cache", engine.Options{CacheSize: -1}, false},
		{"no local dispatch", engine.Options{DisableLocalDispatch: true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mc := &mergeCounter{Store: openSQLite(t)}
			var r runs
			opts := tc.opts
			opts.Store, opts.Registry = mc, chainRegistry(&r)
			e := newEngine(t, opts)
			const n = 10
			runChains(t, mc, "m", n, 30*time.Second)
			// The last commit of a chain is seen before its caller counts it: stop first.
			if err := e.Shutdown(t.Context()); err != nil {
				t.Fatal(err)
			}
			for i := range n {
				for task := range int32(3) {
					if got := r.of(fmt.Sprintf("m%03d", i), task); got != 1 {
						t.Fatalf("activity %d of m%03d ran %d times, want once", task, i, got)
					}
				}
			}
			merged, completed := mc.merged.Load(), mc.completed.Load()
			t.Logf("%d merged completions, %d through the inbox, %d refused as busy", merged, completed, mc.busy.Load())
			if tc.merged && (merged != 3*n || completed != 0) {
				t.Fatalf("%d merged completions and %d through the inbox, want %d and 0", merged, completed, 3*n)
			}
			if !tc.merged && (merged != 0 || completed != 3*n) {
				t.Fatalf("%d merged completions and %d through the inbox, want 0 and %d", merged, completed, 3*n)
			}
		})
	}
}

// quietStore is a store whose orchestration wake-ups the test sends (wake), and which tells
// of every orchestration claim (claims), so that a test knows when the dispatcher sleeps.
type quietStore struct {
	*mergeCounter
	wake        chan struct{}
	claims      chan int
	completions chan struct{} // a CompleteActivity succeeded
}

func (q *quietStore) CompleteActivity(ctx context.Context, taskID int64, lease store.Lease, result store.Message) error {
	err := q.mergeCounter.CompleteActivity(ctx, taskID, lease, result)
	if err == nil {
		q.completions <- struct{}{}
	}
	return err
}

func (q *quietStore) WorkSignal(kind store.WorkKind) <-chan struct{} {
	if kind == store.OrchestrationWorkKind {
		return q.wake
	}
	return q.mergeCounter.WorkSignal(kind)
}

func (q *quietStore) ClaimOrchestrations(ctx context.Context, owner string, names store.Names, max int, leaseFor time.Duration) ([]store.OrchestrationWork, error) {
	w, err := q.mergeCounter.ClaimOrchestrations(ctx, owner, names, max, leaseFor)
	q.claims <- len(w)
	return w, err
}

// TestMergedCompletionWithEventWaiting: an event that reaches the instance while its activity
// runs makes the merged completion refused (a claim would have delivered both), and the result
// goes through the inbox: the next episode sees both, and the instance completes with each once.
func TestMergedCompletionWithEventWaiting(t *testing.T) {
	sq := openSQLite(t)
	q := &quietStore{mergeCounter: &mergeCounter{Store: sq}, wake: make(chan struct{}, 1), claims: make(chan int, 100),
		completions: make(chan struct{}, 10)}
	running := make(chan struct{})
	release := make(chan struct{})
	reg := registry{
		orchestrators: map[string]replay.Func{"gated": func(c *replay.Context) ([]byte, error) {
			a, err := c.CallActivity("gate", "", []byte(`1`), nil).Await()
			if err != nil {
				return nil, err
			}
			ev, err := c.WaitForEvent("go", 0).Await()
			if err != nil {
				return nil, err
			}
			return []byte(fmt.Sprintf(`[%s,%s]`, a, ev)), nil
		}},
		activities: map[string]engine.ActivityFunc{"gate": func(ctx context.Context, in []byte) ([]byte, error) {
			close(running)
			<-release
			return in, nil
		}},
	}
	start(t, sq, "gated", "g", nil) // before the engine: its first claim takes it
	newEngine(t, engine.Options{Store: q, Registry: reg, PollInterval: time.Hour})
	if n := <-q.claims; n != 1 {
		t.Fatalf("the first claim took %d instances, want 1", n)
	}
	<-running
	if n := <-q.claims; n != 0 { // the dispatcher's look after the episode: then it sleeps
		t.Fatalf("the claim after the first episode took %d instances, want 0", n)
	}
	inst, err := sq.GetInstance(t.Context(), "g")
	if err != nil {
		t.Fatal(err)
	}
	ev := history.New(history.EventRaised, time.Now())
	ev.Name, ev.Input = "go", []byte(`2`)
	m, err := control.Message("g", inst.ExecutionID, ev)
	if err != nil {
		t.Fatal(err)
	}
	if err := sq.SendMessage(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	close(release)
	<-q.completions // the result went through the inbox: wake the dispatcher for both
	q.wake <- struct{}{}
	done := waitDone(t, sq, "g", 30*time.Second)
	if done.Status != store.StatusCompleted || string(done.Output) != `[1,2]` {
		t.Fatalf("g is %s with output %s, want Completed with [1,2]", done.Status, done.Output)
	}
	checkOnce(t, sq, "g")
	if q.busy.Load() != 1 || q.merged.Load() != 0 || q.completed.Load() != 1 {
		t.Fatalf("%d merged completions refused as busy, %d merged, %d through the inbox; want 1, 0 and 1",
			q.busy.Load(), q.merged.Load(), q.completed.Load())
	}
}

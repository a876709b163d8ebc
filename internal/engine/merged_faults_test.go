package engine_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reprise-dev/reprise/internal/engine"
	"github.com/reprise-dev/reprise/internal/storefault"
	"github.com/reprise-dev/reprise/store"
)

// completions counts CompleteActivity calls, and those refused for a lost lease.
type completions struct {
	store.Store
	calls, leaseLost atomic.Int64
}

func (c *completions) CompleteActivity(ctx context.Context, taskID int64, lease store.Lease, result store.Message) error {
	err := c.Store.CompleteActivity(ctx, taskID, lease, result)
	c.calls.Add(1)
	if errors.Is(err, store.ErrLeaseLost) {
		c.leaseLost.Add(1)
	}
	return err
}

// TestMergedCompletionFaults: merged commits (an activity's completion with the next episode)
// that fail before being applied, or after (a lost reply), at several rates. A refused merged
// commit falls back to CompleteActivity; a lost reply makes that fallback get ErrLeaseLost, and
// the tasks the applied commit leased run once their lease expires. Either way every chain
// completes, each activity runs exactly once and each result is applied once.
func TestMergedCompletionFaults(t *testing.T) {
	for _, c := range []struct {
		after bool
		every int
	}{
		{false, 1}, {false, 3}, {true, 1}, {true, 3}, {true, 7},
	} {
		t.Run(fmt.Sprintf("after=%v/every=%d", c.after, c.every), func(t *testing.T) {
			fs := storefault.Wrap(openSQLite(t))
			fs.Fail(storefault.Fault{Method: "CommitEpisode", After: c.after, Pick: func(call storefault.Call) bool {
				return call.Merged && call.N%c.every == 0
			}})
			cs := &completions{Store: fs}
			var r runs
			e := newEngine(t, engine.Options{Store: cs, Registry: chainRegistry(&r), LeaseDuration: 500 * time.Millisecond})
			const n = 20
			runChains(t, fs, "m", n, 30*time.Second)
			// A chain is seen completed before the fallback after its last (applied) merged
			// commit has run: stop the engine before counting.
			if err := e.Shutdown(t.Context()); err != nil {
				t.Fatal(err)
			}
			if fs.Failed("CommitEpisode") == 0 {
				t.Fatal("no merged commit was failed: the test proves nothing")
			}
			failed := int64(fs.Failed("CommitEpisode"))
			calls, lost := cs.calls.Load(), cs.leaseLost.Load()
			t.Logf("%d merged commits failed; %d fallback completions, %d refused for a lost lease", failed, calls, lost)
			// Each failed merged commit fell back to CompleteActivity, refused exactly when the
			// merged commit had been applied. (After a lost reply the execution is dropped, so
			// the next activity, claimed once its lease expired, completes without a merged
			// commit: more completions than failed merged commits.)
			if calls < failed || (!c.after && calls != failed) {
				t.Fatalf("%d CompleteActivity calls for %d failed merged commits", calls, failed)
			}
			if want := map[bool]int64{false: 0, true: failed}[c.after]; lost != want {
				t.Fatalf("%d fallback completions were refused for a lost lease, want %d", lost, want)
			}
			for i := range n {
				id := fmt.Sprintf("m%03d", i)
				for task := range int32(3) {
					if got := r.of(id, task); got != 1 {
						t.Fatalf("activity %d of %s ran %d times, want once", task, id, got)
					}
				}
			}
		})
	}
}

package engine_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reprise-dev/reprise/internal/engine"
	"github.com/reprise-dev/reprise/store"
)

// emptyCounter counts the claims of each kind that leased nothing.
type emptyCounter struct {
	store.Store
	orch, act atomic.Int64
}

func (c *emptyCounter) ClaimOrchestrations(ctx context.Context, owner string, names store.Names, max int, leaseFor time.Duration) ([]store.OrchestrationWork, error) {
	w, err := c.Store.ClaimOrchestrations(ctx, owner, names, max, leaseFor)
	if err == nil && len(w) == 0 {
		c.orch.Add(1)
	}
	return w, err
}

func (c *emptyCounter) ClaimActivities(ctx context.Context, owner string, names store.Names, max int, leaseFor time.Duration) ([]store.ActivityWork, error) {
	w, err := c.Store.ClaimActivities(ctx, owner, names, max, leaseFor)
	if err == nil && len(w) == 0 {
		c.act.Add(1)
	}
	return w, err
}

// TestNoEmptyClaims: a sequential chain on an engine alone (no poll within the test, so every
// claim is one a wake-up asked for) makes at most one claim per step that finds nothing: the
// orchestration dispatcher's after each episode (kept, see dispatch). Before decision 0023 was
// amended, a step made 2.75 (two of orchestrations: one straight after the claim that took the
// instance, one after the episode; and one of activities after each freed slot); now 1.00.
func TestNoEmptyClaims(t *testing.T) {
	sq := openSQLite(t)
	var empty atomic.Int64
	sq.ObserveTransactions(func(tx store.Transaction) { empty.Add(int64(tx.EmptyClaims)) })
	ec := &emptyCounter{Store: sq}
	var r runs
	newEngine(t, engine.Options{Store: ec, Registry: chainRegistry(&r), PollInterval: time.Hour})
	runChains(t, ec, "warm", 1, 30*time.Second) // the dispatchers' first claims are behind us
	const chains = 10
	before, orch, act := empty.Load(), ec.orch.Load(), ec.act.Load()
	for i := range chains {
		runChains(t, ec, fmt.Sprintf("c%d-", i), 1, 30*time.Second)
	}
	steps := float64(chains * 4) // three activities and the last episode per chain
	got := float64(empty.Load()-before) / steps
	t.Logf("empty claims per step: %.2f (orchestrations %.2f, activities %.2f)", got,
		float64(ec.orch.Load()-orch)/steps, float64(ec.act.Load()-act)/steps)
	if got > 1.25 {
		t.Fatalf("%.2f empty claims per sequential step, want at most 1.25", got)
	}
}

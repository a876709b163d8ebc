package bench

import (
	"sync/atomic"

	"github.com/reprise-dev/reprise/store"
)

// txCounter counts the write transactions a store reports (store.TransactionObserver) during
// the measured phase of a run. It is told on the store's writers, so it only adds.
type txCounter struct {
	transactions, syncs, writes, claims, emptyClaims atomic.Int64
}

func (c *txCounter) observe(t store.Transaction) {
	c.transactions.Add(1)
	c.writes.Add(int64(t.Writes))
	if t.Synced {
		c.syncs.Add(1)
	}
	if t.Claims > 0 {
		c.claims.Add(int64(t.Claims))
		c.emptyClaims.Add(int64(t.EmptyClaims))
	}
}

// reset forgets what was counted: a scenario whose measured phase starts late (idle) calls it
// then.
func (c *txCounter) reset() {
	for _, v := range []*atomic.Int64{&c.transactions, &c.syncs, &c.writes, &c.claims, &c.emptyClaims} {
		v.Store(0)
	}
}

// Transactions are the write transactions of the run's own store during the measured phase, as
// the store reported them (store.TransactionObserver); with more than one host, only the first
// host's. The ratios are per completed orchestration and per step (StepUnit: an activity, or
// an entity operation in the entity scenarios); a ratio with nothing to divide by is 0.
type Transactions struct {
	Count       int64 `json:"count"`
	Syncs       int64 `json:"fsyncs"` // commits that waited for the log to reach the disk
	Writes      int64 `json:"writes"` // operations the writers grouped into them
	Claims      int64 `json:"claims"`
	EmptyClaims int64 `json:"emptyClaims"` // claims that leased nothing

	PerOrchestration            float64 `json:"perOrchestration,omitempty"`
	SyncsPerOrchestration       float64 `json:"fsyncsPerOrchestration,omitempty"`
	EmptyClaimsPerOrchestration float64 `json:"emptyClaimsPerOrchestration,omitempty"`
	WritesPerTransaction        float64 `json:"writesPerTransaction,omitempty"`
	StepUnit                    string  `json:"stepUnit,omitempty"`
	PerStep                     float64 `json:"perStep,omitempty"`
	SyncsPerStep                float64 `json:"fsyncsPerStep,omitempty"`
	EmptyClaimsPerStep          float64 `json:"emptyClaimsPerStep,omitempty"`
}

// result computes the figures from the counts, per orchestrations completed and per steps
// of stepUnit.
func (c *txCounter) result(orchestrations int, stepUnit string, steps int) *Transactions {
	t := &Transactions{
		Count: c.transactions.Load(), Syncs: c.syncs.Load(), Writes: c.writes.Load(),
		Claims: c.claims.Load(), EmptyClaims: c.emptyClaims.Load(),
	}
	per := func(v int64, n int) float64 {
		if n <= 0 {
			return 0
		}
		return float64(v) / float64(n)
	}
	t.PerOrchestration = per(t.Count, orchestrations)
	t.SyncsPerOrchestration = per(t.Syncs, orchestrations)
	t.EmptyClaimsPerOrchestration = per(t.EmptyClaims, orchestrations)
	if t.Count > 0 {
		t.WritesPerTransaction = float64(t.Writes) / float64(t.Count)
	}
	if steps > 0 {
		t.StepUnit = stepUnit
		t.PerStep = per(t.Count, steps)
		t.SyncsPerStep = per(t.Syncs, steps)
		t.EmptyClaimsPerStep = per(t.EmptyClaims, steps)
	}
	return t
}

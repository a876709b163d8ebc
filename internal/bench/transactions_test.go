package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/reprise-dev/reprise/store"
)

// TestTransactionFigures: the counts and ratios of a known sequence of observed transactions.
func TestTransactionFigures(t *testing.T) {
	var c txCounter
	for _, tx := range []store.Transaction{
		{Writes: 4, Synced: true},                                  // a group commit
		{Writes: 1, Claims: 1},                                     // a claim that leased work
		{Writes: 3, Claims: 2, EmptyClaims: 2},                     // two empty claims grouped with a renewal
		{Writes: 2, Synced: true, Duration: time.Millisecond},      // another commit
		{Writes: 2, Claims: 1, EmptyClaims: 1, Synced: true},       // an empty claim grouped with a commit
		{Writes: 0, Synced: false, Duration: 2 * time.Millisecond}, // a failed transaction
	} {
		c.observe(tx)
	}
	got := c.result(2, "activity", 6)
	want := Transactions{
		Count: 6, Syncs: 3, Writes: 12, Claims: 4, EmptyClaims: 3,
		PerOrchestration: 3, SyncsPerOrchestration: 1.5, EmptyClaimsPerOrchestration: 1.5, WritesPerTransaction: 2,
		StepUnit: "activity", PerStep: 1, SyncsPerStep: 0.5, EmptyClaimsPerStep: 0.5,
	}
	if *got != want {
		t.Fatalf("result = %+v\nwant     %+v", *got, want)
	}
	// Nothing to divide by: the ratios are 0, not NaN or Inf, and there is no step.
	if none := c.result(0, "activity", 0); none.PerOrchestration != 0 || none.StepUnit != "" || none.PerStep != 0 || none.Count != 6 {
		t.Fatalf("result with no orchestrations and no steps = %+v", *none)
	}
	c.reset()
	if z := c.result(1, "activity", 1); z.Count != 0 || z.Syncs != 0 || z.Writes != 0 || z.Claims != 0 || z.EmptyClaims != 0 || z.WritesPerTransaction != 0 {
		t.Fatalf("after reset: %+v, want all zero", *z)
	}
}

// TestTransactionsOfARun: a hello-sequence run on SQLite counts its transactions. Whatever the
// stores group, each instance needs its start and four episodes committed one after the other,
// each durable before the next can begin (the last three merged with their activity's
// completion), and a claim of the instance for the first: at least 5 fsyncs and a claim on a
// durable store. A relaxed store syncs no commit.
func TestTransactionsOfARun(t *testing.T) {
	for _, relaxed := range []bool{false, true} {
		cfg := Config{N: 5, Relaxed: relaxed}
		res, err := Run(context.Background(), "hello-sequence", cfg)
		if err != nil {
			t.Fatal(err)
		}
		tx := res.Transactions
		if tx == nil {
			t.Fatalf("relaxed %v: no transactions counted: %+v", relaxed, res)
		}
		if tx.Claims < 1 || tx.EmptyClaims > tx.Claims || tx.Writes < tx.Count || tx.Count < tx.Syncs {
			t.Fatalf("relaxed %v: inconsistent counts %+v", relaxed, *tx)
		}
		if relaxed && tx.Syncs != 0 {
			t.Fatalf("relaxed store: %d fsyncs, want 0", tx.Syncs)
		}
		if !relaxed && tx.Syncs < 5 {
			t.Fatalf("durable store: %d fsyncs, want at least 5 (start and four episodes, in sequence)", tx.Syncs)
		}
		if tx.StepUnit != "activity" || math.Abs(tx.PerStep*15-float64(tx.Count)) > 1e-9 || math.Abs(tx.PerOrchestration*5-float64(tx.Count)) > 1e-9 {
			t.Fatalf("relaxed %v: ratios %+v do not match 5 orchestrations of 3 activities", relaxed, *tx)
		}
		var out bytes.Buffer
		if err := WriteText(&out, []Result{res}, cfg); err != nil || !strings.Contains(out.String(), "fsyncs/orch") {
			t.Fatalf("report lacks the transactions table: %q, %v", out.String(), err)
		}
		js, err := json.Marshal(res)
		if err != nil || !strings.Contains(string(js), `"fsyncs":`) || !strings.Contains(string(js), `"perOrchestration":`) {
			t.Fatalf("JSON lacks the transactions: %s, %v", js, err)
		}
	}
}

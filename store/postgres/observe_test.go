package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/reprise-dev/reprise/internal/pgtest"
	"github.com/reprise-dev/reprise/store"
)

// TestObservedTransactions: the observers hear of the writers' groups, each flushed to the WAL
// at commit, and of the claims, transactions of their own: one that leased work changed rows
// and flushed, an empty one did not. A removed observer hears no more.
func TestObservedTransactions(t *testing.T) {
	s := openStore(t, pgtest.DSN(t), Options{Hub: randomHub()})
	seen := make(chan store.Transaction, 16)
	remove := s.ObserveTransactions(func(tx store.Transaction) { seen <- tx })
	defer remove()
	next := func(what string, want store.Transaction) {
		t.Helper()
		var got store.Transaction
		select {
		case got = <-seen:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no transaction observed", what)
		}
		got.Duration = 0
		if got != want {
			t.Fatalf("%s: observed %+v, want %+v", what, got, want)
		}
	}
	ctx := context.Background()
	if err := s.CreateInstance(ctx, store.Instance{ID: "i", Name: "o", Status: store.StatusPending}, store.Message{Data: []byte("start")}, store.ReuseNever); err != nil {
		t.Fatal(err)
	}
	next("create", store.Transaction{Writes: 1, Synced: true})
	work, err := s.ClaimOrchestrations(ctx, "n", store.Names{"o"}, 10, time.Minute)
	if err != nil || len(work) != 1 {
		t.Fatalf("claim: %d, %v", len(work), err)
	}
	next("claim", store.Transaction{Writes: 1, Claims: 1, Synced: true})
	if again, err := s.ClaimOrchestrations(ctx, "n", store.Names{"o"}, 10, time.Minute); err != nil || len(again) != 0 {
		t.Fatalf("second claim: %d, %v; want nothing", len(again), err)
	}
	next("empty claim", store.Transaction{Writes: 1, Claims: 1, EmptyClaims: 1})
	if tasks, err := s.ClaimActivities(ctx, "n", store.Names{"act"}, 10, time.Minute); err != nil || len(tasks) != 0 {
		t.Fatalf("activity claim: %d, %v; want nothing", len(tasks), err)
	}
	next("empty activity claim", store.Transaction{Writes: 1, Claims: 1, EmptyClaims: 1})
	remove()
	if _, err := s.ClaimOrchestrations(ctx, "n", store.Names{"o"}, 10, time.Minute); err != nil {
		t.Fatal(err)
	}
	select {
	case tx := <-seen:
		t.Fatalf("observed %+v after the observer was removed", tx)
	default: // a claim is told before it returns
	}
}

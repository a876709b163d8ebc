package txobserve

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/reprise-dev/reprise/store"
)

func TestSet(t *testing.T) {
	var s Set
	if s.Active() {
		t.Fatal("an empty set is active")
	}
	s.Tell(store.Transaction{Writes: 1}) // nobody to tell: no panic
	if remove := s.Add(nil); s.Active() {
		t.Fatal("adding nil made the set active")
	} else {
		remove()
	}
	var a, b atomic.Int64
	removeA := s.Add(func(tx store.Transaction) { a.Add(int64(tx.Writes)) })
	removeB := s.Add(func(tx store.Transaction) { b.Add(int64(tx.Writes)) })
	s.Tell(store.Transaction{Writes: 2})
	if a.Load() != 2 || b.Load() != 2 {
		t.Fatalf("told %d and %d writes, want 2 and 2", a.Load(), b.Load())
	}
	removeA()
	removeA() // a second removal must not take b out
	s.Tell(store.Transaction{Writes: 3})
	if a.Load() != 2 || b.Load() != 5 || !s.Active() {
		t.Fatalf("after removing a: %d and %d writes (active %v), want 2 and 5, active", a.Load(), b.Load(), s.Active())
	}
	removeB()
	if s.Active() {
		t.Fatal("active after removing every observer")
	}
}

// TestSetConcurrent: adding and removing while writers tell is safe (run with -race), and an
// observer present throughout hears every transaction.
func TestSetConcurrent(t *testing.T) {
	var s Set
	var steady atomic.Int64
	defer s.Add(func(store.Transaction) { steady.Add(1) })()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 1000 {
				s.Tell(store.Transaction{Writes: 1})
			}
		})
	}
	for range 100 {
		remove := s.Add(func(store.Transaction) {})
		remove()
	}
	wg.Wait()
	if got := steady.Load(); got != 4000 {
		t.Fatalf("the steady observer heard %d transactions, want 4000", got)
	}
}

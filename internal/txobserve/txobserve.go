// Package txobserve holds the observers of a store's write transactions
// (store.TransactionObserver) for the bundled stores: any number of them (the metrics and
// `reprise bench` watch the same store), each removable, and telling them costs a writer one
// atomic load when there are none.
package txobserve

import (
	"slices"
	"sync"
	"sync/atomic"

	"github.com/reprise-dev/reprise/store"
)

// Set is a set of transaction observers. The zero value is empty and ready to use; it is safe
// for concurrent use.
type Set struct {
	mu  sync.Mutex                                 // serializes Add and removals
	fns atomic.Pointer[[]*func(store.Transaction)] // copied on write, so Tell takes no lock
}

// Add adds fn and returns the function that removes it again (more calls do nothing). A nil
// fn adds nothing.
func (s *Set) Add(fn func(store.Transaction)) (remove func()) {
	if fn == nil {
		return func() {}
	}
	p := &fn // the identity removal looks for: functions do not compare
	s.mu.Lock()
	var next []*func(store.Transaction)
	if cur := s.fns.Load(); cur != nil {
		next = slices.Clone(*cur)
	}
	next = append(next, p)
	s.fns.Store(&next)
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			cur := s.fns.Load()
			if cur == nil {
				return
			}
			next := slices.DeleteFunc(slices.Clone(*cur), func(q *func(store.Transaction)) bool { return q == p })
			s.fns.Store(&next)
		})
	}
}

// Active reports whether anyone observes: a writer skips measuring a transaction otherwise.
func (s *Set) Active() bool {
	cur := s.fns.Load()
	return cur != nil && len(*cur) > 0
}

// Tell tells every observer of t, on the caller's goroutine.
func (s *Set) Tell(t store.Transaction) {
	cur := s.fns.Load()
	if cur == nil {
		return
	}
	for _, fn := range *cur {
		(*fn)(t)
	}
}

// Package notify provides the in-process wake-ups a store hands to the engine: one coalescing
// signal channel per kind of work, and one-shot watches on instances.
//
// A store calls Notify and Changed after its transaction is durable; dispatchers receive from
// Signal, and waiters (wait-for-completion) use Watch. A Notifier holds no global state, so every
// store has its own.
package notify

import (
	"sync"

	"github.com/reprise-dev/reprise/store"
)

// Notifier is safe for concurrent use. The zero value is not usable; call New.
type Notifier struct {
	mu       sync.Mutex
	signals  map[store.WorkKind][]chan struct{}
	pending  map[store.WorkKind]bool // a Notify before the kind's first Signal, kept for it
	watchers map[string]map[*watcher]struct{}
	closed   bool
}

type watcher struct{ ch chan struct{} }

// New returns an empty Notifier.
func New() *Notifier {
	return &Notifier{
		signals:  make(map[store.WorkKind][]chan struct{}),
		pending:  make(map[store.WorkKind]bool),
		watchers: make(map[string]map[*watcher]struct{}),
	}
}

// Signal returns a new channel that receives a value after each Notify(kind) from now on (and
// after one that came before the kind's first Signal). Every call returns a channel of its own,
// and every channel receives every wake-up, so that several dispatchers (engines) on one store
// each wake. Channels are never released: call Signal once per dispatcher, not per wait.
func (n *Notifier) Signal(kind store.WorkKind) <-chan struct{} {
	// Buffer 1: one pending wake-up is enough, since the dispatcher claims everything available
	// when it wakes.
	ch := make(chan struct{}, 1)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.pending[kind] {
		ch <- struct{}{}
		delete(n.pending, kind)
	}
	n.signals[kind] = append(n.signals[kind], ch)
	return ch
}

// Notify wakes the receivers of kind's channels. It never blocks: a wake-up already pending on a
// channel absorbs this one.
func (n *Notifier) Notify(kind store.WorkKind) {
	n.mu.Lock()
	defer n.mu.Unlock()
	chs := n.signals[kind]
	if len(chs) == 0 {
		n.pending[kind] = true
		return
	}
	for _, ch := range chs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Watch returns a channel closed by the next Changed(id) (or by Close), and a function that
// stops the watch. Calling stop more than once, or after the channel closed, is harmless.
func (n *Notifier) Watch(id string) (changed <-chan struct{}, stop func()) {
	w := &watcher{ch: make(chan struct{})}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		close(w.ch)
		return w.ch, func() {}
	}
	set := n.watchers[id]
	if set == nil {
		set = make(map[*watcher]struct{})
		n.watchers[id] = set
	}
	set[w] = struct{}{}
	return w.ch, func() { n.unwatch(id, w) }
}

func (n *Notifier) unwatch(id string, w *watcher) {
	n.mu.Lock()
	defer n.mu.Unlock()
	set := n.watchers[id]
	if _, ok := set[w]; !ok {
		return // already fired or stopped
	}
	delete(set, w)
	if len(set) == 0 {
		delete(n.watchers, id) // keep the map from growing with finished instances
	}
}

// Changed closes the channels of every current watch on id; later watches wait for the next
// change.
func (n *Notifier) Changed(id string) {
	n.mu.Lock()
	set := n.watchers[id]
	delete(n.watchers, id)
	n.mu.Unlock()
	for w := range set {
		close(w.ch)
	}
}

// Watching returns the number of instances with at least one watch; tests use it to find leaks.
func (n *Notifier) Watching() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.watchers)
}

// Close fires every watch, so that waiters wake up and find the store closed; later watches are
// closed at once. Signal channels stay open: receivers select on their own shutdown too.
func (n *Notifier) Close() {
	n.mu.Lock()
	all := n.watchers
	n.watchers = make(map[string]map[*watcher]struct{})
	n.closed = true
	n.mu.Unlock()
	for _, set := range all {
		for w := range set {
			close(w.ch)
		}
	}
}

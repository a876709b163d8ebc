package engine

import (
	"context"
	"errors"
	"sync"

	"github.com/reprise-dev/reprise/internal/history"
	"github.com/reprise-dev/reprise/internal/replay"
	"github.com/reprise-dev/reprise/store"
)

// Remote runs orchestrators and activities outside the engine: a Durable Task SDK worker
// connected over gRPC (internal/grpcapi). The engine does everything else as for Go functions:
// it claims the work under leases, loads the history, turns the result into one commit through
// the same encoding and store, renews the leases while the worker works, and releases them when
// it shuts down. An engine with a Remote runs no Go code; Options.Registry is not used.
type Remote interface {
	// Names lists what the worker runs, as Registry.Names. It is read at Start (a kind with no
	// names gets no dispatcher) and again at each claim, so a Remote may narrow its names as it
	// learns what its worker does not run.
	Names() (orchestrators, activities store.Names)
	// Orchestrate hands one turn to the worker and returns what the worker made of it: the
	// actions it scheduled and, when it finished, how. done is called once with the outcome of
	// the commit (nil when it was applied), so that the worker hears whether its completion
	// counted. An error means the turn was not run; wrap ErrGivenBack when the worker gave the
	// turn back (abandoned, or went away), which is no failure of the engine.
	Orchestrate(ctx context.Context, t Turn) (res *replay.Result, done func(error), err error)
	// Activity hands one activity invocation to the worker and returns its result event
	// (TaskCompleted or TaskFailed; the engine sets its TaskID). done and errors as Orchestrate.
	Activity(ctx context.Context, t ActivityTurn) (result history.Event, done func(error), err error)
}

// ErrGivenBack means that a remote worker gave a work item back without a result: it abandoned
// it, or its stream ended. The item runs again (see Remote).
var ErrGivenBack = errors.New("work item given back by the worker")

// Turn is one orchestration turn for a Remote.
type Turn struct {
	Instance store.Instance
	Claim    store.Claim
	Past     []history.Event // the committed history, oldest first
	New      []history.Event // this turn's events, starting with OrchestratorStarted
}

// ActivityTurn is one activity invocation for a Remote.
type ActivityTurn struct {
	Task      store.Task
	Claim     store.Claim
	Scheduled history.Event // the TaskScheduled event: name, input, version, tags, trace
}

// Signals shares a store's work signals among several engines on that store (a Go App and the
// streams of its gRPC workers): a store hands each kind's wake-ups to one receiver
// (store.Store.WorkSignal), and Signals is that receiver, passing each wake-up to every
// subscriber. Close stops it.
type Signals struct {
	mu   sync.Mutex
	subs map[store.WorkKind]map[chan struct{}]struct{}
	stop chan struct{}
	once sync.Once
}

// NewSignals starts receiving st's work signals.
func NewSignals(st store.Store) *Signals {
	s := &Signals{subs: map[store.WorkKind]map[chan struct{}]struct{}{}, stop: make(chan struct{})}
	for _, kind := range []store.WorkKind{store.OrchestrationWorkKind, store.ActivityWorkKind, store.EntityWorkKind} {
		s.subs[kind] = map[chan struct{}]struct{}{}
		go s.forward(kind, st.WorkSignal(kind))
	}
	return s
}

func (s *Signals) forward(kind store.WorkKind, from <-chan struct{}) {
	for {
		select {
		case <-s.stop:
			return
		case <-from:
			s.mu.Lock()
			for ch := range s.subs[kind] {
				nudge(ch)
			}
			s.mu.Unlock()
		}
	}
}

// Subscribe returns a channel that receives (coalesced) every wake-up of kind from now on, and
// the function that ends the subscription.
func (s *Signals) Subscribe(kind store.WorkKind) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	s.subs[kind][ch] = struct{}{}
	s.mu.Unlock()
	return ch, func() {
		s.mu.Lock()
		delete(s.subs[kind], ch)
		s.mu.Unlock()
	}
}

// Subscribers returns the number of subscriptions of kind; tests use it to find leaks.
func (s *Signals) Subscribers(kind store.WorkKind) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.subs[kind])
}

// Close stops forwarding.
func (s *Signals) Close() { s.once.Do(func() { close(s.stop) }) }

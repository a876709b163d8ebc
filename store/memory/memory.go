package memory

import (
	"bytes"
	"container/heap"
	"context"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/reprise-dev/reprise/internal/notify"
	"github.com/reprise-dev/reprise/internal/txobserve"
	"github.com/reprise-dev/reprise/store"
)

var (
	_ store.Store               = (*Store)(nil)
	_ store.TransactionObserver = (*Store)(nil)
)

// Options configure New. The zero value is a good default.
type Options struct {
	// Hub is the task hub the store is bound to; "" means "default".
	Hub string
	// Now is the store's clock: it decides when messages become visible and leases expire, and
	// gives the times the store sets (creation and update times). nil means time.Now.
	Now func() time.Time
}

// Store is a task hub held in memory. It is safe for concurrent use.
type Store struct {
	hub       string
	clock     func() time.Time
	notifier  *notify.Notifier
	observers txobserve.Set

	mu        sync.Mutex // guards everything below; see the package doc
	closed    bool
	instances map[string]*instance
	tasks     map[int64]*task
	tasksOf   map[string]map[int64]*task // by the task's InstanceID, which need not exist
	settings  map[string][]byte

	lastMessage, lastTask, lastToken int64

	ready     map[readyKey]*instanceQueue // instances with messages and no known live lease
	readyTask map[string]*taskQueue       // by folded name: tasks with no known live lease
	leases    leaseHeap                   // every lease set, by expiry (stale entries skipped)
	timers    timerHeap                   // messages with a visible time, for NextVisibleAt
	// leasesAt and timersAt are the heap sizes after their last compaction (see compact).
	leasesAt, timersAt int

	// Turns of the claims of each kind (see next): the index of the name a claim starts from.
	turns, exceptTurns [3]uint
}

// instance is an instance with its history, inbox and lease.
type instance struct {
	inst    store.Instance // HistoryLen unused: len(history) is the truth
	history [][]byte
	inbox   []*message // in ID order
	lease   lease
	deleted bool

	// Its place in its ready queue: queue nil when it is in none. readyAt and readyID are the
	// visible time and ID of its oldest message, the queue's order.
	queue   *instanceQueue
	index   int
	readyAt time.Time
	readyID int64
}

type message struct {
	m    store.Message
	gone bool // consumed or deleted with its instance: its timer entry is stale
}

type task struct {
	t       store.Task
	lease   lease
	deleted bool
	// Its place in its ready queue, as for instances; readyAt is its last lease expiry (zero for
	// a task never leased or released), which orders the queue before the ID, as in SQLite.
	queue   *taskQueue
	index   int
	readyAt time.Time
}

type lease struct {
	owner   string
	token   int64 // 0: none
	expires time.Time
}

// live reports whether the lease holds at now.
func (l lease) live(now time.Time) bool { return l.token != 0 && l.expires.After(now) }

type readyKey struct {
	kind store.Kind
	name string // folded
}

// New returns an empty in-memory store.
func New(opts Options) *Store {
	if opts.Hub == "" {
		opts.Hub = "default"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Store{
		hub:       opts.Hub,
		clock:     opts.Now,
		notifier:  notify.New(),
		instances: make(map[string]*instance),
		tasks:     make(map[int64]*task),
		tasksOf:   make(map[string]map[int64]*task),
		settings:  make(map[string][]byte),
		ready:     make(map[readyKey]*instanceQueue),
		readyTask: make(map[string]*taskQueue),
	}
}

// Hub returns the task hub the store is bound to.
func (s *Store) Hub() string { return s.hub }

// String names the store for logs: "memory:" and the hub.
func (s *Store) String() string { return "memory:" + s.hub }

// WorkSignal returns a wake-up channel of kind; see store.Store.
func (s *Store) WorkSignal(kind store.WorkKind) <-chan struct{} { return s.notifier.Signal(kind) }

// WatchInstance returns a channel closed after the next committed change to the instance.
func (s *Store) WatchInstance(id string) (<-chan struct{}, func()) { return s.notifier.Watch(id) }

// Wake wakes the dispatchers of every kind of work, as a commit that added work would. The
// engine sleeps until the next timer by the wall clock; a test that moves the store's virtual
// clock (Options.Now) calls Wake so that the work which became visible, or whose lease ran out,
// is claimed at once rather than at the engine's next poll.
func (s *Store) Wake() {
	for _, kind := range [...]store.WorkKind{store.OrchestrationWorkKind, store.ActivityWorkKind, store.EntityWorkKind} {
		s.notifier.Notify(kind)
	}
}

// ObserveTransactions adds a function told of each write (store.TransactionObserver): every
// write is a transaction of one, and none is synced.
func (s *Store) ObserveTransactions(fn func(store.Transaction)) (remove func()) {
	return s.observers.Add(fn)
}

// Close drops the data and fails later calls with store.ErrClosed. It is safe to call more than
// once.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.instances, s.tasks, s.tasksOf, s.settings = nil, nil, nil, nil
	s.ready, s.readyTask, s.leases, s.timers = nil, nil, nil, nil
	s.mu.Unlock()
	s.notifier.Close() // wakes the watchers, who then find the store closed
	return nil
}

// now is the store's clock, without a monotonic reading, so that times compare as stored.
func (s *Store) now() time.Time { return s.clock().Round(0) }

// effects are the wake-ups of one write, fired once the mutex is released.
type effects struct {
	orchestration, activity, entity bool
	changed                         []string
	claim, took                     bool // the write is a claim of work; it leased something
}

func (e *effects) work(kind store.Kind) {
	if kind == store.KindEntity {
		e.entity = true
	} else {
		e.orchestration = true
	}
}

// write runs fn under the mutex as one transaction: fn validates everything before it changes
// anything, so that an error leaves the store as it was. The effects fire after the mutex is
// released, then the observer is told.
func (s *Store) write(ctx context.Context, what string, fn func(now time.Time, eff *effects) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	start := time.Now() // the observer's duration is real time, whatever the store's clock
	var eff effects
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("memory: %s: %w", what, store.ErrClosed)
	}
	err := fn(s.now(), &eff)
	s.mu.Unlock()
	claim, took := eff.claim, eff.took && err == nil
	if err != nil {
		eff = effects{}
	}
	for _, id := range eff.changed {
		s.notifier.Changed(id)
	}
	if eff.orchestration {
		s.notifier.Notify(store.OrchestrationWorkKind)
	}
	if eff.activity {
		s.notifier.Notify(store.ActivityWorkKind)
	}
	if eff.entity {
		s.notifier.Notify(store.EntityWorkKind)
	}
	if s.observers.Active() {
		tx := store.Transaction{Writes: 1, Duration: time.Since(start)}
		if claim {
			tx.Claims = 1
			if !took {
				tx.EmptyClaims = 1
			}
		}
		s.observers.Tell(tx)
	}
	return err
}

// read runs fn under the mutex, failing with store.ErrClosed once the store is closed.
func (s *Store) read(ctx context.Context, what string, fn func(now time.Time) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("memory: %s: %w", what, store.ErrClosed)
	}
	return fn(s.now())
}

// copyInstance returns a copy of in that shares no memory with it.
func copyInstance(in store.Instance) store.Instance {
	in.Input = bytes.Clone(in.Input)
	in.Output = bytes.Clone(in.Output)
	in.CustomStatus = bytes.Clone(in.CustomStatus)
	in.Failure = bytes.Clone(in.Failure)
	if len(in.Tags) == 0 {
		in.Tags = nil // an empty map reads back as nil
	} else {
		in.Tags = maps.Clone(in.Tags)
	}
	return in
}

// get returns the instance as callers see it.
func (in *instance) get(withPayloads bool) store.Instance {
	out := copyInstance(in.inst)
	out.HistoryLen = len(in.history)
	if !withPayloads {
		out.Input, out.Output, out.CustomStatus = nil, nil, nil
	}
	return out
}

// stored returns t as the store keeps times: without a monotonic reading.
func stored(t time.Time) time.Time { return t.Round(0) }

// fold folds ASCII letters to lower case, as SQLite's NOCASE compares names.
func fold(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// refresh puts in into the ready queue it belongs to now, or takes it out of every queue: an
// instance is ready when it exists, has messages and holds no live lease. Every change to an
// instance's inbox, lease or name ends with it.
func (s *Store) refresh(in *instance, now time.Time) {
	if in.queue != nil {
		heap.Remove(in.queue, in.index)
		in.queue = nil
	}
	if in.deleted || len(in.inbox) == 0 || in.lease.live(now) {
		return
	}
	first := in.inbox[0]
	for _, m := range in.inbox[1:] {
		if m.m.VisibleAt.Before(first.m.VisibleAt) {
			first = m
		}
	}
	in.readyAt, in.readyID = first.m.VisibleAt, first.m.ID
	key := readyKey{in.inst.Kind, fold(in.inst.Name)}
	q := s.ready[key]
	if q == nil {
		q = &instanceQueue{}
		s.ready[key] = q
	}
	heap.Push(q, in)
}

// refreshTask does for a task what refresh does for an instance.
func (s *Store) refreshTask(t *task, now time.Time) {
	if t.queue != nil {
		heap.Remove(t.queue, t.index)
		t.queue = nil
	}
	if t.deleted || t.lease.live(now) {
		return
	}
	t.readyAt = t.lease.expires
	name := fold(t.t.Name)
	q := s.readyTask[name]
	if q == nil {
		q = &taskQueue{}
		s.readyTask[name] = q
	}
	heap.Push(q, t)
}

// leaseInstance gives in a lease and records it in the lease heap; leaseTask does so for a task.
func (s *Store) leaseInstance(in *instance, l lease, now time.Time) {
	in.lease = l
	heap.Push(&s.leases, leaseEntry{at: l.expires, token: l.token, inst: in})
	s.refresh(in, now)
}

func (s *Store) leaseTask(t *task, l lease, now time.Time) {
	t.lease = l
	heap.Push(&s.leases, leaseEntry{at: l.expires, token: l.token, task: t})
	s.refreshTask(t, now)
}

// expire returns the instances and tasks whose leases ran out by now to their ready queues.
func (s *Store) expire(now time.Time) {
	for len(s.leases) > 0 && !s.leases[0].at.After(now) {
		e := heap.Pop(&s.leases).(leaseEntry)
		switch {
		case e.inst != nil && !e.inst.deleted && e.inst.lease.token == e.token && e.inst.queue == nil:
			s.refresh(e.inst, now)
		case e.task != nil && !e.task.deleted && e.task.lease.token == e.token && e.task.queue == nil:
			s.refreshTask(e.task, now)
		}
	}
	s.compact(now)
}

// compact drops the stale entries of the lease and timer heaps once they have doubled since
// the last compaction: leases released early and timers consumed early would otherwise pile up
// until their time came, which a virtual clock may never bring. Timers visible by now go too:
// NextVisibleAt has no more use for them.
func (s *Store) compact(now time.Time) {
	const minCompact = 1024
	if n := len(s.leases); n > minCompact && n > 2*s.leasesAt {
		kept := s.leases[:0]
		for _, e := range s.leases {
			switch {
			case e.inst != nil && !e.inst.deleted && e.inst.lease.token == e.token && e.inst.lease.expires.Equal(e.at),
				e.task != nil && !e.task.deleted && e.task.lease.token == e.token && e.task.lease.expires.Equal(e.at):
				kept = append(kept, e)
			}
		}
		clear(s.leases[len(kept):])
		s.leases = kept
		heap.Init(&s.leases)
		s.leasesAt = len(kept)
	}
	if n := len(s.timers); n > minCompact && n > 2*s.timersAt {
		kept := s.timers[:0]
		for _, m := range s.timers {
			if !m.gone && m.m.VisibleAt.After(now) {
				kept = append(kept, m)
			}
		}
		clear(s.timers[len(kept):])
		s.timers = kept
		heap.Init(&s.timers)
		s.timersAt = len(kept)
	}
}

// instanceQueue is a min-heap of ready instances by (readyAt, readyID).
type instanceQueue []*instance

func (q instanceQueue) Len() int { return len(q) }
func (q instanceQueue) Less(i, j int) bool {
	if c := q[i].readyAt.Compare(q[j].readyAt); c != 0 {
		return c < 0
	}
	return q[i].readyID < q[j].readyID
}
func (q instanceQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}
func (q *instanceQueue) Push(x any) {
	in := x.(*instance)
	in.queue, in.index = q, len(*q)
	*q = append(*q, in)
}
func (q *instanceQueue) Pop() any {
	old := *q
	in := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	in.queue = nil
	return in
}

// next returns the oldest instance of q that is claimable at now, or nil. Instances that hold a
// live lease (renewed after it had run out) leave the queue; the lease heap brings them back.
func (q *instanceQueue) next(now time.Time) *instance {
	for q.Len() > 0 {
		in := (*q)[0]
		if in.lease.live(now) {
			heap.Pop(q)
			continue
		}
		if in.readyAt.After(now) {
			return nil
		}
		return in
	}
	return nil
}

// taskQueue is a min-heap of ready tasks by (readyAt, ID).
type taskQueue []*task

func (q taskQueue) Len() int { return len(q) }
func (q taskQueue) Less(i, j int) bool {
	if c := q[i].readyAt.Compare(q[j].readyAt); c != 0 {
		return c < 0
	}
	return q[i].t.ID < q[j].t.ID
}
func (q taskQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}
func (q *taskQueue) Push(x any) {
	t := x.(*task)
	t.queue, t.index = q, len(*q)
	*q = append(*q, t)
}
func (q *taskQueue) Pop() any {
	old := *q
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	t.queue = nil
	return t
}

// next returns the first claimable task of q, or nil; see instanceQueue.next.
func (q *taskQueue) next(now time.Time) *task {
	for q.Len() > 0 {
		t := (*q)[0]
		if t.lease.live(now) {
			heap.Pop(q)
			continue
		}
		return t
	}
	return nil
}

// leaseEntry is one lease set on an instance or a task; it is stale once the item's token or
// expiry has changed.
type leaseEntry struct {
	at    time.Time
	token int64
	inst  *instance
	task  *task
}

type leaseHeap []leaseEntry

func (h leaseHeap) Len() int           { return len(h) }
func (h leaseHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h leaseHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *leaseHeap) Push(x any)        { *h = append(*h, x.(leaseEntry)) }
func (h *leaseHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = leaseEntry{}
	*h = old[:len(old)-1]
	return e
}

// timerHeap holds the messages with a visible time, earliest first.
type timerHeap []*message

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if c := h[i].m.VisibleAt.Compare(h[j].m.VisibleAt); c != 0 {
		return c < 0
	}
	return h[i].m.ID < h[j].m.ID
}
func (h timerHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)   { *h = append(*h, x.(*message)) }
func (h *timerHeap) Pop() any {
	old := *h
	m := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return m
}

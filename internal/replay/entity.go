package replay

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/reprise-dev/reprise/internal/history"
)

// ErrCriticalSection is what the errors of calls that break the rules of critical sections wrap
// (see LockEntities).
var ErrCriticalSection = errors.New("not allowed in this critical section")

// ErrLocksReleased completes the task of a lock request whose section was released before its
// locks were granted.
var ErrLocksReleased = errors.New("critical section released before its locks were granted")

// entities is the orchestration's side of its entity traffic: calls awaiting replies, lock
// requests awaiting grants, and the critical section it is in.
type entities struct {
	calls    map[string]*entityCall // by request ID
	grants   map[string]*Task       // lock requests awaiting their grant, by section ID
	section  *criticalSection       // nil outside a critical section
	requests int                    // lock requests made by this execution, ever
}

type entityCall struct {
	task   *Task
	target string
	op     string
	seq    int32
}

// criticalSection is the section the orchestration is in, from its lock request to its release.
type criticalSection struct {
	id       string
	entities []string        // sorted
	calling  map[string]bool // entities of the set with a call awaiting its reply
}

func (s *criticalSection) holds(entity string) bool {
	_, found := slices.BinarySearch(s.entities, entity)
	return found
}

// SignalEntity schedules a one-way operation on the entity target, delivered at at (the zero
// time: now). It is refused, and nothing is scheduled, while the orchestration is in a critical
// section that holds target: the entity would run the signal only after the section, which
// awaits nothing from it.
func (c *Context) SignalEntity(target, op string, input []byte, at time.Time) error {
	if s := c.entities.section; s != nil && s.holds(target) {
		return fmt.Errorf("%w: signal %q to entity %q: the critical section holds it, and may signal only entities outside its lock set (call it instead)",
			ErrCriticalSection, op, target)
	}
	if !at.IsZero() {
		at = at.UTC()
	}
	c.schedule(history.Event{Type: history.EntityOperationSignaled, RequestID: c.NewUUID(), InstanceID: target, Name: op, Input: input, FireAt: at})
	return nil
}

// CallEntity schedules a two-way operation on the entity target and returns a task for its
// result. The task fails with a *FailedError (Kind "entity") when the operation fails. In a
// critical section, calling an entity outside the lock set, or an entity of the set that has
// not yet replied to the previous call, fails the task at once (ErrCriticalSection).
func (c *Context) CallEntity(target, op string, input []byte) *Task {
	s := c.entities.section
	if s != nil && !s.holds(target) {
		return c.Failed(fmt.Errorf("%w: call %q on entity %q: a critical section may call only the entities it locked (%v)",
			ErrCriticalSection, op, target, s.entities))
	}
	if s != nil && s.calling[target] {
		return c.Failed(fmt.Errorf("%w: call %q on entity %q: the critical section's previous call to it has not returned; await it first",
			ErrCriticalSection, op, target))
	}
	id := c.NewUUID()
	seq := c.schedule(history.Event{Type: history.EntityOperationCalled, RequestID: id, InstanceID: target, Name: op, Input: input})
	t := c.newTask()
	if c.entities.calls == nil {
		c.entities.calls = map[string]*entityCall{}
	}
	c.entities.calls[id] = &entityCall{task: t, target: target, op: op, seq: seq}
	if s != nil {
		s.calling[target] = true
	}
	return t
}

// LockEntities enters a critical section that locks the targets (sorted, without duplicates) and
// returns a task that completes when every one of them is locked. The orchestration is in the
// section from the request until ReleaseLocks; sections do not nest. While in it, the
// orchestration may call only the entities it locked, one call per entity at a time, may signal
// only the others, and cannot start sub-orchestrations (activities are allowed). The engine releases the locks of a section still open when the
// execution ends, however it ends.
func (c *Context) LockEntities(targets []string) (*Task, error) {
	if len(targets) == 0 {
		return nil, errors.New("lock entities: no entities to lock; name at least one")
	}
	if s := c.entities.section; s != nil {
		return nil, fmt.Errorf("%w: lock entities %v: the orchestration is already in a critical section (of %v), and sections do not nest; release it first",
			ErrCriticalSection, targets, s.entities)
	}
	set := slices.Clone(targets)
	slices.Sort(set)
	set = slices.Compact(set)
	id := c.NewUUID()
	c.schedule(history.Event{Type: history.EntityLockRequested, RequestID: id, InstanceID: set[0], LockSet: set, Position: 0})
	c.entities.section = &criticalSection{id: id, entities: set, calling: map[string]bool{}}
	c.entities.requests++
	t := c.newTask()
	if c.entities.grants == nil {
		c.entities.grants = map[string]*Task{}
	}
	c.entities.grants[id] = t
	return t, nil
}

// ReleaseLocks leaves the critical section: it schedules an unlock for each entity of the lock
// set. Outside a critical section it does nothing. A lock request not yet granted fails with
// ErrLocksReleased (the unlocks withdraw it).
func (c *Context) ReleaseLocks() {
	s := c.entities.section
	if s == nil {
		return
	}
	for _, entity := range s.entities {
		c.schedule(history.Event{Type: history.EntityUnlockSent, RequestID: s.id, InstanceID: entity})
	}
	c.entities.section = nil
	if t, ok := c.entities.grants[s.id]; ok {
		delete(c.entities.grants, s.id)
		t.complete(nil, ErrLocksReleased)
	}
}

// InCriticalSection returns the entities of the critical section the orchestration is in, if
// it is in one.
func (c *Context) InCriticalSection() (entities []string, ok bool) {
	if s := c.entities.section; s != nil {
		return slices.Clone(s.entities), true
	}
	return nil, false
}

// RequestedLocks reports whether the execution has requested entity locks (LockEntities) at
// any point of its run, so that a caller can tell that it holds none without reading history.
func (c *Context) RequestedLocks() bool { return c.entities.requests > 0 }

// applyEntityReply completes the call an EntityOperationCompleted or EntityOperationFailed
// replies to; a reply to no open call (stale, or a duplicate) is ignored.
func (x *Execution) applyEntityReply(e history.Event) {
	ents := &x.c.entities
	call, ok := ents.calls[e.RequestID]
	if !ok {
		return
	}
	delete(ents.calls, e.RequestID)
	if s := ents.section; s != nil {
		delete(s.calling, call.target)
	}
	if e.Type == history.EntityOperationFailed {
		call.task.complete(nil, &FailedError{Kind: "entity", Name: call.op, Entity: call.target, TaskID: call.seq, Failure: e.Failure})
	} else {
		call.task.complete(e.Result, nil)
	}
	x.continueIfReady()
}

// applyLockGranted completes the lock request of the section the grant names; a grant for no
// waiting request is ignored.
func (x *Execution) applyLockGranted(e history.Event) {
	t, ok := x.c.entities.grants[e.RequestID]
	if !ok {
		return
	}
	delete(x.c.entities.grants, e.RequestID)
	t.complete(nil, nil)
	x.continueIfReady()
}

// matchEntity compares what the code scheduled (got) with the entity event history recorded
// (want), beyond type and name: the target, the lock set and the request ID, which ties the
// replies and grants in history to the code's requests.
func matchEntity(want, got history.Event) error {
	if got.InstanceID != want.InstanceID || !slices.Equal(got.LockSet, want.LockSet) {
		return &NonDeterminismError{Expected: describe(want), Actual: "scheduled " + describe(got)}
	}
	if got.RequestID != want.RequestID {
		return &NonDeterminismError{Expected: fmt.Sprintf("%s with request ID %q", describe(want), want.RequestID),
			Actual: fmt.Sprintf("scheduled it with request ID %q (the NewUUID calls before it changed)", got.RequestID)}
	}
	return nil
}

func describeEntity(e history.Event) string {
	switch e.Type {
	case history.EntityOperationSignaled:
		return fmt.Sprintf("SignalEntity #%d %q on %q", e.ID, e.Name, e.InstanceID)
	case history.EntityOperationCalled:
		return fmt.Sprintf("CallEntity #%d %q on %q", e.ID, e.Name, e.InstanceID)
	case history.EntityLockRequested:
		return fmt.Sprintf("LockEntities #%d %q", e.ID, e.LockSet)
	case history.EntityUnlockSent:
		return fmt.Sprintf("ReleaseLocks #%d on %q", e.ID, e.InstanceID)
	}
	return ""
}

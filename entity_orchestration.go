package reprise

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/reprise-dev/reprise/internal/control"
	"github.com/reprise-dev/reprise/internal/replay"
	"github.com/reprise-dev/reprise/store"
)

// Durable entities as an orchestration uses them. An orchestration can:
//
//   - signal an entity (SignalEntity): a one-way operation, delivered once, now or at a set time;
//   - call an entity (CallEntity): a two-way operation whose result, or failure, the
//     orchestration awaits like an activity's;
//   - lock entities (LockEntities) to run a critical section: while the orchestration holds the
//     locks, the entities run no operation but its own calls, so that it can read and update
//     several entities as one step (a transfer between two accounts, say).
//
// The rules of a critical section, which the context enforces (with errors wrapping
// ErrCriticalSection):
//
//   - sections do not nest: lock every entity the section needs with one LockEntities;
//   - a section calls only the entities it locked, and each of them once at a time (await a
//     call before calling the same entity again);
//   - a section signals only entities it did not lock (a locked entity would run the signal
//     only after the section);
//   - a section cannot start sub-orchestrations (activities, timers and events are allowed).
//
// Locks are released by CriticalSection.Release, or when the orchestration ends, however it
// ends: completed, failed (a non-determinism failure too), terminated or continued as new.

// SignalOption configures a signal to an entity (OrchestrationContext.SignalEntity, and the
// Client's).
type SignalOption interface{ applySignal(*signalConfig) }

type signalConfig struct {
	at time.Time // zero: now
}

type signalFunc func(*signalConfig)

func (f signalFunc) applySignal(c *signalConfig) { f(c) }

// WithSignalTime delivers the signal at t instead of now (a scheduled signal); the zero time
// means now. A time outside the stores' range (store.MinTime to store.MaxTime) is refused.
func WithSignalTime(t time.Time) SignalOption {
	return signalFunc(func(c *signalConfig) { c.at = t })
}

func signalConfigOf(opts []SignalOption) signalConfig {
	var c signalConfig
	for _, o := range opts {
		o.applySignal(&c)
	}
	return c
}

// ErrCriticalSection is what the errors of entity calls, signals and lock requests that break
// the rules of critical sections wrap (see LockEntities).
var ErrCriticalSection = replay.ErrCriticalSection

// entityOperation checks an operation for an entity and returns its input as JSON.
func entityOperation(id EntityID, op string, input any) ([]byte, error) {
	if err := id.check(); err != nil {
		return nil, err
	}
	if op == "" {
		return nil, fmt.Errorf("%w: the operation name is empty", ErrInvalidArgument)
	}
	data, err := json.Marshal(input)
	if err != nil {
		return nil, fmt.Errorf("%w: input must be JSON-serialisable: %v", ErrInvalidArgument, err)
	}
	if err := errors.Join(control.CheckText("operation name", op, control.MaxNameBytes), control.CheckPayload("input", data)); err != nil {
		return nil, err
	}
	return data, nil
}

// CallEntity calls the operation op of the entity id with the input (JSON-serialisable) and
// returns a task for its result, decoded into O. If the operation fails, the task fails with a
// *TaskFailedError of Kind "entity". The entity is created by the call if it does not exist.
//
// In a critical section, only the entities of the section can be called, one call per entity at
// a time: other calls fail at once with an error wrapping ErrCriticalSection. No CallOption
// applies to entity calls: a call given one fails at once (ErrInvalidArgument).
func CallEntity[O any](ctx *OrchestrationContext, id EntityID, op string, input any, opts ...CallOption) *Task[O] {
	if len(opts) > 0 {
		return &Task[O]{t: ctx.rc.Failed(fmt.Errorf("call entity %s operation %q: %w: call options (retries, instance IDs) do not apply to entity calls",
			id, op, ErrInvalidArgument))}
	}
	data, err := entityOperation(id, op, input)
	if err != nil {
		return &Task[O]{t: ctx.rc.Failed(fmt.Errorf("call entity %s operation %q: %w", id, op, err))}
	}
	return &Task[O]{t: ctx.rc.CallEntity(id.String(), op, data)}
}

// SignalEntity sends the operation op of the entity id with the input (JSON-serialisable),
// without waiting for it to run (fire and forget): now, or at the time of WithSignalTime. The
// entity is created by the signal if it does not exist. In a critical section, signalling an
// entity of the section is refused (ErrCriticalSection).
func (c *OrchestrationContext) SignalEntity(id EntityID, op string, input any, opts ...SignalOption) error {
	data, err := entityOperation(id, op, input)
	if err != nil {
		return fmt.Errorf("signal entity %s operation %q: %w", id, op, err)
	}
	cfg := signalConfigOf(opts)
	if err := store.CheckTime("signal time", cfg.at); err != nil {
		return fmt.Errorf("signal entity %s operation %q: %w", id, op, err)
	}
	return c.rc.SignalEntity(id.String(), op, data, cfg.at)
}

// CriticalSection is the handle of the entity locks an orchestration holds (LockEntities).
type CriticalSection struct {
	c        *OrchestrationContext
	entities []EntityID
	released bool
}

// LockEntities locks the entities (at least one; duplicates count once) and returns when every
// one of them is locked for this orchestration: a critical section. Until it is released
// (CriticalSection.Release, or the end of the orchestration, however it ends), the entities run
// only this orchestration's calls; their other operations wait.
//
// The section's rules: it cannot lock more entities (sections do not nest); it calls only the
// entities it locked, one call per entity at a time; it signals only entities it did not lock;
// it starts no sub-orchestration.
// Breaking them is an error wrapping ErrCriticalSection. Locks are taken in one order (sorted
// instance IDs), so two orchestrations that lock overlapping sets never deadlock each other.
func (c *OrchestrationContext) LockEntities(ids ...EntityID) (*CriticalSection, error) {
	targets := make([]string, len(ids))
	for i, id := range ids {
		if err := id.check(); err != nil {
			return nil, fmt.Errorf("lock entities: %w", err)
		}
		targets[i] = id.String()
	}
	t, err := c.rc.LockEntities(targets)
	if err != nil {
		return nil, err
	}
	set, _ := c.rc.InCriticalSection()
	s := &CriticalSection{c: c, entities: entityIDs(set)}
	if _, err := t.Await(); err != nil {
		s.Release()
		return nil, fmt.Errorf("lock entities %v: %w", set, publicError(err))
	}
	return s, nil
}

// Release releases the section's locks; the orchestration leaves the section. Releasing it
// again does nothing.
func (s *CriticalSection) Release() {
	if s.released {
		return
	}
	s.released = true
	s.c.rc.ReleaseLocks()
}

// Entities returns the entities the section locks, in their instance IDs' order.
func (s *CriticalSection) Entities() []EntityID { return slices.Clone(s.entities) }

// InCriticalSection returns the entities of the critical section the orchestration is in, if it
// is in one (from LockEntities until the section is released).
func (c *OrchestrationContext) InCriticalSection() ([]EntityID, bool) {
	set, ok := c.rc.InCriticalSection()
	if !ok {
		return nil, false
	}
	return entityIDs(set), true
}

// entityIDs returns the EntityIDs of instance IDs that are known to be entities'.
func entityIDs(instanceIDs []string) []EntityID {
	ids := make([]EntityID, 0, len(instanceIDs))
	for _, s := range instanceIDs {
		name, key, _ := store.ParseEntityInstanceID(s)
		ids = append(ids, EntityID{Name: name, Key: key})
	}
	return ids
}

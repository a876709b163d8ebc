package engine

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/reprise-dev/reprise/internal/control"
	"github.com/reprise-dev/reprise/internal/history"
	"github.com/reprise-dev/reprise/internal/replay"
	"github.com/reprise-dev/reprise/store"
)

// The orchestration side of entity traffic: the messages an orchestration's entity actions
// become, and the release of its locks when its execution ends. (The entities' side, which
// runs their operations and grants their locks, is elsewhere.)

// entityTarget returns the entity an entity action is sent to: the target of a signal, call or
// unlock, and for a lock request the entity of the lock set at its position (lock requests go
// round the set, one entity after the other).
func entityTarget(a history.Event) (string, error) {
	if a.Type != history.EntityLockRequested {
		return a.InstanceID, nil
	}
	if a.Position < 0 || a.Position >= len(a.LockSet) {
		return "", fmt.Errorf("lock request %q has position %d outside its lock set of %d", a.RequestID, a.Position, len(a.LockSet))
	}
	return a.LockSet[a.Position], nil
}

// entityMessage returns the message an entity action (EntityOperationSignaled,
// EntityOperationCalled, EntityLockRequested, EntityUnlockSent) sends to its entity: the event
// without its target, with the orchestration's execution as its sender (Parent), where the
// entity sends its reply or grant. A signal becomes visible at its scheduled time.
func entityMessage(inst store.Instance, a history.Event, now time.Time) (store.Message, error) {
	target, err := entityTarget(a)
	if err != nil {
		return store.Message{}, err
	}
	ev := history.New(a.Type, now)
	ev.RequestID = a.RequestID
	ev.Parent = &history.Parent{InstanceID: inst.ID, ExecutionID: inst.ExecutionID}
	switch a.Type {
	case history.EntityOperationSignaled:
		ev.Name, ev.Input, ev.FireAt = a.Name, a.Input, a.FireAt
	case history.EntityOperationCalled:
		ev.Name, ev.Input = a.Name, a.Input
	case history.EntityLockRequested:
		ev.LockSet, ev.Position = a.LockSet, a.Position
	}
	m, err := control.Message(target, "", ev)
	if err != nil {
		return store.Message{}, err
	}
	if a.Type == history.EntityOperationSignaled {
		m.VisibleAt = a.FireAt
	}
	return m, nil
}

// checkEntityActions returns the failure of an orchestration whose entity actions name an ID
// that is not an entity's (store.CheckEntityMessage), or nil. The SDK checks IDs before it
// schedules anything; this guards the engine against any other source of actions.
func checkEntityActions(actions []history.Event) *history.Failure {
	for _, a := range actions {
		var ids []string
		switch a.Type {
		case history.EntityOperationSignaled, history.EntityOperationCalled, history.EntityUnlockSent:
			ids = []string{a.InstanceID}
		case history.EntityLockRequested:
			if _, err := entityTarget(a); err != nil {
				return invalidEntityFailure(a, err)
			}
			ids = a.LockSet
		default:
			continue
		}
		for _, id := range ids {
			if err := store.CheckEntityMessage(store.Message{InstanceID: id}); err != nil {
				return invalidEntityFailure(a, err)
			}
		}
	}
	return nil
}

func invalidEntityFailure(a history.Event, err error) *history.Failure {
	return &history.Failure{
		Type:         "InvalidEntityID",
		Message:      fmt.Sprintf("%s (request %q) cannot be sent: %v; build entity IDs as @name@key (reprise.EntityID)", a.Type, a.RequestID, err),
		NonRetriable: true,
	}
}

// heldLocks returns the critical sections an ending execution holds: those its history requested
// and did not release (history.OpenLocks), up to and including chunk, the events of this
// episode. old is the stored history, but for a cached execution, which ran without it: that
// history is read only if the execution ever requested locks.
func (e *Engine) heldLocks(ctx context.Context, inst store.Instance, old, chunk []history.Event, cached *replay.Execution) ([]history.Lock, error) {
	if cached != nil && inst.HistoryLen > 0 {
		if !cached.Context().RequestedLocks() {
			return nil, nil
		}
		chunks, err := e.st.History(ctx, inst.ID)
		if err != nil {
			return nil, fmt.Errorf("load history to release entity locks: %w", err)
		}
		if old, err = history.DecodeAll(chunks); err != nil {
			return nil, err
		}
	}
	return history.OpenLocks(slices.Concat(old, chunk)), nil
}

// unlockAll sends an EntityUnlockSent for each held critical section to every entity of its
// lock set, from the execution of inst: an entity that holds the section releases it, one that
// has the request queued drops it, and the others ignore it. IDs that are not entities' (which
// no request could have reached) are left out.
func unlockAll(ep *store.Episode, inst store.Instance, locks []history.Lock, now time.Time) error {
	for _, l := range locks {
		for _, entity := range l.Entities {
			unlock := history.Event{Type: history.EntityUnlockSent, RequestID: l.Section, InstanceID: entity}
			m, err := entityMessage(inst, unlock, now)
			if err != nil {
				return err
			}
			if store.CheckEntityMessage(m) != nil {
				continue
			}
			ep.EntityMessages = append(ep.EntityMessages, m)
		}
	}
	return nil
}

package control

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/reprise-dev/reprise/internal/history"
	"github.com/reprise-dev/reprise/store"
)

// The records and messages of the control operations are built here, for the Plane and for the
// engine, which writes the same ones inside its episode commits (sub-orchestration starts,
// continue-as-new, recursive termination, rewinds passed on to sub-orchestrations).

// NewID returns 32 random hex characters: a new instance or execution ID.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// StartEvent returns the ExecutionStarted event of execution execID of instance id; parent is
// nil but for a sub-orchestration. Callers set its Version, Tags and Trace when they have them.
func StartEvent(id, execID, name string, input json.RawMessage, parent *history.Parent, now time.Time) history.Event {
	ev := history.New(history.ExecutionStarted, now)
	ev.Name, ev.Input, ev.InstanceID, ev.ExecutionID, ev.Parent = name, input, id, execID, parent
	return ev
}

// NewInstance returns the record of a new instance, Pending until its first episode, and its first
// message, from its ExecutionStarted event (whose version and tags the instance keeps).
func NewInstance(start history.Event) (store.Instance, store.Message, error) {
	m, err := Message(start.InstanceID, start.ExecutionID, start)
	if err != nil {
		return store.Instance{}, store.Message{}, err
	}
	inst := store.Instance{ID: start.InstanceID, Name: start.Name, ExecutionID: start.ExecutionID,
		Version: start.Version, Tags: start.Tags,
		Status: store.StatusPending, Input: start.Input, CreatedAt: start.Time, UpdatedAt: start.Time}
	if start.Parent != nil {
		inst.ParentID = start.Parent.InstanceID
	}
	return inst, m, nil
}

// Message returns ev as a message to instance id; executionID "" reaches whatever execution is
// current when it is processed.
func Message(id, executionID string, ev history.Event) (store.Message, error) {
	data, err := history.EncodeEvent(ev)
	if err != nil {
		return store.Message{}, err
	}
	return store.Message{InstanceID: id, ExecutionID: executionID, Data: data}, nil
}

// Command returns the event of a command (ExecutionTerminated, ExecutionSuspended,
// ExecutionResumed, ExecutionRewound) with its reason as JSON.
func Command(typ history.Type, reason json.RawMessage, now time.Time) history.Event {
	ev := history.New(typ, now)
	ev.Input = reason
	return ev
}

// Terminated returns the command that terminates an instance with the reason (its output);
// recursive passes it on to the instance's open sub-orchestrations.
func Terminated(reason json.RawMessage, recursive bool, now time.Time) history.Event {
	ev := Command(history.ExecutionTerminated, reason, now)
	ev.Recursive = recursive
	return ev
}

// Op is an operation whose acceptance depends on the instance's runtime status.
type Op int

// Operations checked by CheckStatus.
const (
	OpRaise Op = iota
	OpTerminate
	OpSuspend
	OpResume
	OpRewind
)

// CheckStatus says whether an instance in status s takes op: nil, or the sentinel that says why
// not (ErrInstanceFinished, ErrNotFailed). The engine applies the same rule to the rewinds it
// finds in an inbox.
func CheckStatus(op Op, s store.Status) error {
	if op == OpRewind {
		if s != store.StatusFailed {
			return ErrNotFailed
		}
		return nil
	}
	if s.Terminal() {
		return ErrInstanceFinished
	}
	return nil
}

package entity

import (
	"encoding/json"
	"time"

	"github.com/reprise-dev/reprise/internal/history"
	"github.com/reprise-dev/reprise/store"
)

// Batch is the work a runner does for one batch: the operations of a plan on the entity's state.
type Batch struct {
	InstanceID  string // "@name@key"
	Name, Key   string
	ExecutionID string
	State       json.RawMessage // the state as the last batch left it; nil when the entity has none
	Requests    []Request
	// Claim is the batch's claim (its lease), for a runner that gives the batch back: it
	// shortens the lease, so that the entity is claimed again soon rather than when it expires.
	Claim store.Claim
}

// Result is what a runner made of a batch.
type Result struct {
	// Results pair with the batch's requests, in order. A runner may return fewer (not none): the
	// requests it did not get to run in a later batch, as if never taken.
	Results []OpResult
	// Actions are the signals and orchestration starts of the operations that succeeded, in
	// order; a failed operation's are dropped with its change of state.
	Actions []Action
	// State is the state after the operations that have results; nil when the entity has none
	// (deleted, or never set).
	State json.RawMessage
}

// OpResult is the outcome of one operation: its output (a call's result; nil for none) or its
// failure.
type OpResult struct {
	Output     json.RawMessage
	Failure    *history.Failure
	Start, End time.Time // when it ran, as the runner reports it; zero when unknown
}

// Action is a signal or an orchestration start made by an operation.
type Action struct {
	Signal *SignalAction
	Start  *StartAction
}

// SignalAction is an operation an entity signals to an entity.
type SignalAction struct {
	To        string // the target's instance ID, "@name@key"
	Operation string
	Input     json.RawMessage
	At        time.Time // zero for at once
}

// StartAction is an orchestration an entity starts. An instance that already runs under the ID
// is left alone.
type StartAction struct {
	InstanceID string // "" for a new ID
	Name       string
	Version    string
	Input      json.RawMessage
	At         time.Time // zero for at once
}

// Package entity is the scheduler of durable entities: what an entity keeps besides its user
// state (the lock, the backlog of messages waiting behind it, the request IDs seen lately), and
// the planning of one batch from that and the messages claimed with it.
//
// The engine claims an entity with its visible messages (store.Store.ClaimEntities), plans a
// batch here (Plan), runs the batch's operations (the Go entities of an App, or a gRPC worker's),
// and commits everything in one store.Episode: the messages consumed, the new user state, the
// new scheduler state (the entity's history, one chunk), the replies to callers, the lock
// hand-offs, and the operations' own signals and orchestration starts. The planning does not
// depend on what the operations do, so it is a pure function of its inputs, tested on its own.
//
// Messages are history events (internal/history):
//
//   - EntityOperationSignaled: an operation without reply (from a client, an orchestration or an
//     entity); RequestID, Name (operation), Input, and Parent when sent by an orchestration.
//   - EntityOperationCalled: an operation whose result goes back to Parent (instance and
//     execution), as EntityOperationCompleted or EntityOperationFailed with the RequestID.
//   - EntityLockRequested: a step of acquiring a critical section (RequestID is its ID) for the
//     orchestration Parent over LockSet; Position names this entity's place in the set.
//   - EntityUnlockSent: the end of the critical section RequestID of Parent.
//   - GenericEvent named ContinueName: the engine's reminder to itself that a backlog waits
//     (sent when a batch stopped at its cap with the entity free).
package entity

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/reprise-dev/reprise/internal/history"
)

// ContinueName names the GenericEvent an entity sends itself when a batch left runnable work in
// its backlog.
const ContinueName = "reprise.entity.continue"

// DeleteOperation is the operation that every entity has implicitly: it removes the state.
const DeleteOperation = "delete"

// RecentLimit bounds the request IDs an entity remembers, to drop a message delivered twice (a
// client that retried a signal whose reply it lost). A duplicate further back than that many
// messages runs again.
const RecentLimit = 1000

// OpsLimit bounds the recent operations an entity keeps for people to look at (the dashboard).
const OpsLimit = 20

// Lock is the critical section that holds an entity.
type Lock struct {
	Holder    string `json:"holder"`    // the orchestration instance
	Execution string `json:"execution"` // its execution
	Section   string `json:"section"`   // the critical section's ID
}

// Seen is a message the entity has processed (for duplicates) or an unlock of a section it did
// not hold (so that the section's request, if it comes late, is dropped).
type Seen struct {
	Type      history.Type `json:"t"`
	RequestID string       `json:"r"`
}

// Op is an operation the entity ran, kept for people to look at.
type Op struct {
	Time      time.Time `json:"time"`
	Name      string    `json:"op"`
	RequestID string    `json:"requestId"`
	Caller    string    `json:"caller,omitempty"` // the calling orchestration; "" for a signal
	Failed    bool      `json:"failed,omitempty"`
}

// State is an entity's scheduler state, kept as its history (one chunk).
type State struct {
	Lock    *Lock           `json:"lock,omitempty"`
	Backlog []history.Event `json:"backlog,omitempty"` // messages waiting behind the lock, oldest first
	Recent  []Seen          `json:"recent,omitempty"`  // oldest first, at most RecentLimit
	Ops     []Op            `json:"ops,omitempty"`     // the last operations, oldest first, at most OpsLimit
}

// Decode decodes the scheduler state from an entity's history; no chunks is the state of a new
// entity.
func Decode(chunks [][]byte) (State, error) {
	var s State
	if len(chunks) == 0 {
		return s, nil
	}
	if err := json.Unmarshal(chunks[len(chunks)-1], &s); err != nil {
		return State{}, fmt.Errorf("decode entity scheduler state: %w", err)
	}
	return s, nil
}

// Encode encodes the scheduler state as the one chunk of an entity's history.
func (s State) Encode() ([]byte, error) {
	data, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encode entity scheduler state: %w", err)
	}
	return data, nil
}

// Summary is what an entity's instance row says about its scheduler (store.Instance.CustomStatus
// of an entity), so that listings show it without reading the history.
type Summary struct {
	LockedBy string `json:"lockedBy,omitempty"`
	Backlog  int    `json:"backlog,omitempty"`
}

// Summary returns the summary of s.
func (s State) Summary() Summary {
	var sum Summary
	if s.Lock != nil {
		sum.LockedBy = s.Lock.Holder
	}
	sum.Backlog = len(s.Backlog)
	return sum
}

// EncodeSummary encodes a summary for the instance row; nil when there is nothing to say.
func EncodeSummary(sum Summary) []byte {
	if sum == (Summary{}) {
		return nil
	}
	data, _ := json.Marshal(sum) // a struct of a string and an int always encodes
	return data
}

// DecodeSummary decodes an instance row's summary. What does not decode (a row written by hand)
// reads as no summary.
func DecodeSummary(data []byte) Summary {
	var sum Summary
	_ = json.Unmarshal(data, &sum)
	return sum
}

// Request is an operation of a batch, to run.
type Request struct {
	Event     history.Event   // the message it came from (EntityOperationSignaled or EntityOperationCalled)
	RequestID string          // its request ID
	Operation string          // the operation's name
	Input     json.RawMessage // nil for none
	// Caller is the orchestration that waits for the result; nil for a signal.
	Caller *history.Parent
}

// IsDelete reports whether the operation is the implicit delete.
func (r Request) IsDelete() bool { return strings.EqualFold(r.Operation, DeleteOperation) }

// Message is a message of the batch whose sending does not depend on the operations' results: a
// lock passed on along its set, or granted.
type Message struct {
	// To is the instance that receives Event: an entity (EntityLockRequested passed on) or an
	// orchestration (EntityLockGranted, at execution ToExecution).
	To          string
	ToExecution string
	Event       history.Event
	ToEntity    bool
}

// Inbound is a claimed message: its store ID and its decoded event.
type Inbound struct {
	ID    int64
	Event history.Event
}

// Limits bound a batch.
type Limits struct {
	// Operations is the most operations a batch runs (maxEntityOperationBatchSize).
	Operations int
	// Messages is the most messages a batch takes in, operations or not: a locked entity moves
	// messages to its backlog without running them, and the backlog is rewritten with each batch.
	Messages int
}

// Plan is what a batch does, given the entity's scheduler state and its claimed messages.
type Plan struct {
	Requests []Request // to run, in order, on the state as the last batch left it
	Messages []Message // lock hand-offs, in the order they happened
	Consumed []int64   // the claimed messages this batch takes in (the others stay in the inbox)
	State    State     // the scheduler state after the batch; Ops is for the caller to append to
	// Continue is set when the batch stopped at a limit with the entity free and its backlog not
	// empty: nothing in the inbox would bring the entity back, so the engine reminds it.
	Continue bool
}

// item is a message on its way through the planner: from the inbox (id > 0, not yet consumed)
// or from the backlog (already consumed by an earlier batch).
type item struct {
	id int64
	ev history.Event
}

// NewPlan plans a batch. It takes the messages in order: first the backlog when the entity is
// free, then the claimed messages. While the entity is locked, only calls from the lock's holder
// run; everything else joins the backlog, to run when the lock is released. A lock request takes
// a free entity and is passed on to the next entity of its set, or granted when this one is the
// last. Duplicates (by type and request ID, among the last RecentLimit) are dropped.
func NewPlan(s State, in []Inbound, lim Limits, now time.Time) Plan {
	p := Plan{State: State{Lock: s.Lock, Recent: s.Recent, Ops: s.Ops}}
	var queue []item
	if s.Lock == nil {
		for _, ev := range s.Backlog {
			queue = append(queue, item{ev: ev})
		}
	} else {
		p.State.Backlog = append(p.State.Backlog, s.Backlog...)
	}
	for _, m := range in {
		queue = append(queue, item{id: m.ID, ev: m.Event})
	}
	seen := make(map[Seen]bool, len(s.Recent))
	for _, r := range s.Recent {
		seen[r] = true
	}
	remember := func(k Seen) {
		if k.RequestID == "" {
			return
		}
		seen[k] = true
		p.State.Recent = append(p.State.Recent, k)
	}
	taken := 0
	i := 0
	for ; i < len(queue); i++ {
		it := queue[i]
		if it.id > 0 && lim.Messages > 0 && taken >= lim.Messages {
			break
		}
		if isOperation(it.ev.Type) && lim.Operations > 0 && len(p.Requests) >= lim.Operations && runs(p.State.Lock, it.ev) {
			break
		}
		if it.id > 0 {
			taken++
			p.Consumed = append(p.Consumed, it.id)
		}
		ev := it.ev
		key := Seen{Type: ev.Type, RequestID: ev.RequestID}
		if it.id > 0 && ev.RequestID != "" && seen[key] {
			continue // delivered twice
		}
		switch ev.Type {
		case history.EntityOperationSignaled, history.EntityOperationCalled:
			if !runs(p.State.Lock, ev) {
				p.State.Backlog = append(p.State.Backlog, ev)
				if it.id > 0 {
					remember(key)
				}
				continue
			}
			if it.id > 0 {
				remember(key)
			}
			r := Request{Event: ev, RequestID: ev.RequestID, Operation: ev.Name, Input: ev.Input}
			if ev.Type == history.EntityOperationCalled && ev.Parent != nil {
				caller := *ev.Parent
				r.Caller = &caller
			}
			p.Requests = append(p.Requests, r)
		case history.EntityLockRequested:
			if it.id > 0 {
				remember(key)
			}
			if seen[Seen{Type: history.EntityUnlockSent, RequestID: ev.RequestID}] {
				continue // the holder gave the section up before its request got here
			}
			if p.State.Lock != nil || ev.Parent == nil {
				if ev.Parent != nil {
					p.State.Backlog = append(p.State.Backlog, ev)
				}
				continue
			}
			p.State.Lock = &Lock{Holder: ev.Parent.InstanceID, Execution: ev.Parent.ExecutionID, Section: ev.RequestID}
			p.Messages = append(p.Messages, handOff(ev, now))
		case history.EntityUnlockSent:
			if it.id > 0 {
				remember(key)
			}
			l := p.State.Lock
			if l != nil && l.Section == ev.RequestID && (ev.Parent == nil || ev.Parent.InstanceID == l.Holder) {
				p.State.Lock = nil
				// The backlog runs next, before the messages after this one.
				rest := make([]item, 0, len(p.State.Backlog)+len(queue)-i-1)
				for _, b := range p.State.Backlog {
					rest = append(rest, item{ev: b})
				}
				rest = append(rest, queue[i+1:]...)
				p.State.Backlog = nil
				queue = append(queue[:i+1], rest...)
				continue
			}
			// Not the holder: drop a queued request of that section.
			kept := p.State.Backlog[:0]
			for _, b := range p.State.Backlog {
				if !(b.Type == history.EntityLockRequested && b.RequestID == ev.RequestID) {
					kept = append(kept, b)
				}
			}
			p.State.Backlog = kept
		default:
			// ContinueName reminders and anything unknown: taken in, nothing to do.
		}
	}
	// Whatever the limits left: messages from the backlog go back to its front; claimed messages
	// stay in the inbox for the next batch.
	var left []history.Event
	for _, it := range queue[i:] {
		if it.id == 0 {
			left = append(left, it.ev)
		}
	}
	if len(left) > 0 {
		p.State.Backlog = append(left, p.State.Backlog...)
	}
	if len(p.State.Recent) > RecentLimit {
		p.State.Recent = append([]Seen(nil), p.State.Recent[len(p.State.Recent)-RecentLimit:]...)
	}
	p.Continue = p.State.Lock == nil && len(p.State.Backlog) > 0
	return p
}

// isOperation reports whether the event is an operation to run.
func isOperation(t history.Type) bool {
	return t == history.EntityOperationSignaled || t == history.EntityOperationCalled
}

// runs reports whether an operation may run under the lock l: any, when the entity is free; only
// a call from the holder's execution when it is locked.
func runs(l *Lock, ev history.Event) bool {
	if l == nil {
		return true
	}
	return ev.Type == history.EntityOperationCalled && ev.Parent != nil &&
		ev.Parent.InstanceID == l.Holder && (l.Execution == "" || ev.Parent.ExecutionID == l.Execution)
}

// handOff passes a lock request on to the next entity of its set, or grants the lock to the
// orchestration when this entity is the last.
func handOff(req history.Event, now time.Time) Message {
	if next := req.Position + 1; next < len(req.LockSet) {
		ev := req
		ev.Position = next
		ev.Time = now
		return Message{To: req.LockSet[next], Event: ev, ToEntity: true}
	}
	granted := history.New(history.EntityLockGranted, now)
	granted.RequestID = req.RequestID
	return Message{To: req.Parent.InstanceID, ToExecution: req.Parent.ExecutionID, Event: granted}
}

// Package entity is the scheduler of durable entities: what an entity keeps besides its user
// state (the lock, the backlog of messages waiting behind it, the request IDs seen lately), and
// the planning of one batch from that and the messages claimed with it.
//
// The engine claims an entity with its visible messages (store.Store.ClaimEntities), plans a
// batch here (Plan), runs the batch's operations (the Go entities of an App, or a gRPC worker's),
// and commits everything in one store.Episode: the messages consumed, the new user state, the
// new scheduler state (a chunk appended to the entity's history), the replies to callers, the lock
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
	"slices"
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

// Seen is a message the entity has processed, for duplicates.
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

// State is an entity's scheduler state.
type State struct {
	Lock    *Lock           `json:"lock,omitempty"`
	Backlog []history.Event `json:"backlog,omitempty"` // messages waiting behind the lock, oldest first
	Recent  []Seen          `json:"recent,omitempty"`  // oldest first, at most RecentLimit
	// Released are the critical sections whose unlock came to an entity that did not hold them,
	// oldest first, at most RecentLimit: a request of one of them that comes (or waits in the
	// backlog) is dropped.
	Released []string `json:"released,omitempty"`
	Ops      []Op     `json:"ops,omitempty"` // the last operations, oldest first, at most OpsLimit
}

// The scheduler state is kept as the entity's history, in chunks, so that a batch writes what
// changed and not the whole backlog: the first chunk (a base) holds the whole state; each later
// chunk holds the lock and operations as they are after its batch, how many backlog messages
// its batch took from the front, and the backlog messages, request IDs and released sections it
// added at the end. A batch writes a new base (ResetHistory) when the chunks get many.

// chunk is one history chunk of an entity.
type chunk struct {
	Base     bool            `json:"base,omitempty"`
	Lock     *Lock           `json:"lock,omitempty"`
	Ops      []Op            `json:"ops,omitempty"`
	Taken    int             `json:"taken,omitempty"`    // backlog messages taken from the front
	Backlog  []history.Event `json:"backlog,omitempty"`  // added at the end
	Recent   []Seen          `json:"recent,omitempty"`   // added
	Released []string        `json:"released,omitempty"` // added
}

// MaxChunks is how many chunks an entity's history has at most before a batch writes a new base.
const MaxChunks = 64

// Decode decodes the scheduler state from an entity's history; no chunks is the state of a new
// entity.
func Decode(chunks [][]byte) (State, error) {
	var s State
	for i, data := range chunks {
		var c chunk
		if err := json.Unmarshal(data, &c); err != nil {
			return State{}, fmt.Errorf("decode entity scheduler state, chunk %d: %w", i, err)
		}
		if c.Base {
			s = State{}
		}
		if c.Taken > len(s.Backlog) {
			return State{}, fmt.Errorf("decode entity scheduler state, chunk %d: it takes %d backlog messages of %d", i, c.Taken, len(s.Backlog))
		}
		s.Lock, s.Ops = c.Lock, c.Ops
		s.Backlog = append(s.Backlog[c.Taken:], c.Backlog...)
		s.Recent = lastN(append(s.Recent, c.Recent...), RecentLimit)
		s.Released = lastN(append(s.Released, c.Released...), RecentLimit)
	}
	return s, nil
}

// Encode encodes the whole state as a base chunk.
func (s State) Encode() ([]byte, error) {
	return encodeChunk(chunk{Base: true, Lock: s.Lock, Ops: s.Ops, Backlog: s.Backlog, Recent: s.Recent, Released: s.Released})
}

// EncodeChange encodes what the plan changed as a chunk to append to a history of chunks
// chunks; with reset, the whole new state as a base chunk that replaces the history.
func (p Plan) EncodeChange(chunks int) (data []byte, reset bool, err error) {
	if chunks == 0 || chunks >= MaxChunks || len(p.State.Backlog) == 0 && chunks > 1 {
		data, err = p.State.Encode()
		return data, true, err
	}
	data, err = encodeChunk(chunk{Lock: p.State.Lock, Ops: p.State.Ops, Taken: p.Taken, Backlog: p.Added,
		Recent: p.RecentAdded, Released: p.ReleasedAdded})
	return data, false, err
}

func encodeChunk(c chunk) ([]byte, error) {
	data, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode entity scheduler state: %w", err)
	}
	return data, nil
}

func lastN[T any](s []T, n int) []T {
	if len(s) > n {
		return append([]T(nil), s[len(s)-n:]...)
	}
	return s
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

	// The change, for EncodeChange: the backlog messages taken from the front of the old
	// backlog, those added at its end, and the request IDs and released sections added.
	Taken         int
	Added         []history.Event
	RecentAdded   []Seen
	ReleasedAdded []string
}

// NewPlan plans a batch. It takes the messages in order: first the backlog when the entity is
// free, then the claimed messages. While the entity is locked, only calls from the lock's holder
// run; everything else joins the backlog, to run when the lock is released (the backlog is only
// ever taken from its front and added to at its end). A lock request takes a free entity and is
// passed on to the next entity of its set, or granted when this one is the last. Duplicates (by
// type and request ID, among the last RecentLimit) are dropped.
func NewPlan(s State, in []Inbound, lim Limits, now time.Time) Plan {
	p := Plan{State: State{Lock: s.Lock, Recent: s.Recent, Released: s.Released, Ops: s.Ops}}
	old := s.Backlog
	dup := duplicates(s.Recent, len(in))
	released := make(map[string]bool, len(s.Released))
	for _, r := range s.Released {
		released[r] = true
	}
	opsFull := func() bool { return lim.Operations > 0 && len(p.Requests) >= lim.Operations }

	// front and pop walk the backlog: what is left of the old one, then what this batch added.
	front := func() (history.Event, bool) {
		if p.Taken < len(old) {
			return old[p.Taken], true
		}
		if len(p.Added) > 0 {
			return p.Added[0], true
		}
		return history.Event{}, false
	}
	pop := func() {
		if p.Taken < len(old) {
			p.Taken++
		} else {
			p.Added = p.Added[1:]
		}
	}
	// handle processes one message that may run now: from the backlog with the entity free, or
	// from the inbox.
	var drain func() bool
	handle := func(ev history.Event) (stop bool) {
		switch ev.Type {
		case history.EntityOperationSignaled, history.EntityOperationCalled:
			if !runs(p.State.Lock, ev) {
				p.Added = append(p.Added, ev)
				return false
			}
			r := Request{Event: ev, RequestID: ev.RequestID, Operation: ev.Name, Input: ev.Input}
			if ev.Type == history.EntityOperationCalled && ev.Parent != nil {
				caller := *ev.Parent
				r.Caller = &caller
			}
			p.Requests = append(p.Requests, r)
		case history.EntityLockRequested:
			if ev.Parent == nil || released[ev.RequestID] {
				return false // malformed, or the holder gave the section up before its turn
			}
			if p.State.Lock != nil {
				p.Added = append(p.Added, ev)
				return false
			}
			p.State.Lock = &Lock{Holder: ev.Parent.InstanceID, Execution: ev.Parent.ExecutionID, Section: ev.RequestID}
			p.Messages = append(p.Messages, handOff(ev, now))
		case history.EntityUnlockSent:
			l := p.State.Lock
			if l != nil && l.Section == ev.RequestID && (ev.Parent == nil || ev.Parent.InstanceID == l.Holder) {
				p.State.Lock = nil
				return drain() // the backlog runs next, before the messages after this one
			}
			// Not the lock held: that section's request, waiting or still on its way, must not
			// lock. (An unlock of the held section from someone else is ignored.)
			if ev.RequestID != "" && !released[ev.RequestID] && (l == nil || l.Section != ev.RequestID) {
				released[ev.RequestID] = true
				p.ReleasedAdded = append(p.ReleasedAdded, ev.RequestID)
			}
		default:
			// ContinueName reminders and anything unknown: taken in, nothing to do.
		}
		return false
	}
	// drain runs the backlog while the entity is free; it reports whether a limit stopped it.
	drain = func() bool {
		for p.State.Lock == nil {
			ev, ok := front()
			if !ok {
				return false
			}
			if isOperation(ev.Type) && opsFull() {
				return true
			}
			pop()
			if handle(ev) {
				return true
			}
		}
		return false
	}

	stopped := drain()
	taken := 0
	for _, m := range in {
		if stopped || lim.Messages > 0 && taken >= lim.Messages {
			break
		}
		ev := m.Event
		if isOperation(ev.Type) && opsFull() && runs(p.State.Lock, ev) {
			break
		}
		taken++
		p.Consumed = append(p.Consumed, m.ID)
		key := Seen{Type: ev.Type, RequestID: ev.RequestID}
		// Unlocks are not checked: one delivered twice changes nothing, and an unlock must not be
		// mistaken for another of the same section sent by someone else.
		if ev.RequestID != "" && ev.Type != history.EntityUnlockSent {
			if dup(key) {
				continue // delivered twice
			}
			p.RecentAdded = append(p.RecentAdded, key)
		}
		stopped = handle(ev)
	}
	// The old state's slices are shared, never written: a plan may be made twice from one state.
	p.State.Backlog = old[p.Taken:len(old):len(old)]
	if len(p.Added) > 0 {
		p.State.Backlog = append(p.State.Backlog, p.Added...)
	}
	p.State.Recent = window(s.Recent, p.RecentAdded)
	p.State.Released = window(s.Released, p.ReleasedAdded)
	p.Continue = p.State.Lock == nil && len(p.State.Backlog) > 0
	return p
}

// duplicates returns the test of a message against the recent ones and those seen before it in
// the batch. A batch of a few messages scans the recent ones (cheaper than hashing them all, as
// under a lock, where batches are small and frequent); a large batch hashes them once.
func duplicates(recent []Seen, batch int) func(Seen) bool {
	var added map[Seen]bool
	if batch*len(recent) <= 1<<14 {
		return func(k Seen) bool {
			if added[k] || slices.Contains(recent, k) {
				return true
			}
			if added == nil {
				added = map[Seen]bool{}
			}
			added[k] = true
			return false
		}
	}
	seen := make(map[Seen]bool, len(recent)+batch)
	for _, r := range recent {
		seen[r] = true
	}
	return func(k Seen) bool {
		if seen[k] {
			return true
		}
		seen[k] = true
		return false
	}
}

// window is the last RecentLimit of old followed by added, sharing old when nothing was added.
func window[T any](old, added []T) []T {
	if len(added) == 0 {
		return old
	}
	all := make([]T, 0, min(len(old)+len(added), RecentLimit))
	if skip := len(old) + len(added) - RecentLimit; skip > 0 {
		if skip < len(old) {
			all = append(all, old[skip:]...)
		} else {
			added = added[skip-len(old):]
		}
	} else {
		all = append(all, old...)
	}
	return append(all, added...)
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

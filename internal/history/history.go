// Package history defines the events of an orchestration's history and their encoding.
//
// Event types and their meanings follow Durable Functions (DTFx EventType), so that histories can be
// shown to users in the shapes they know. An event is a flat struct: each type uses a few fields.
// Events are stored as JSON arrays of events, one array per chunk (an episode writes one chunk).
package history

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// Type is the kind of a history event. Values follow DTFx's EventType numbering.
type Type int

// Event types.
const (
	ExecutionStarted                  Type = 0
	ExecutionCompleted                Type = 1
	ExecutionFailed                   Type = 2
	ExecutionTerminated               Type = 3
	TaskScheduled                     Type = 4
	TaskCompleted                     Type = 5
	TaskFailed                        Type = 6
	SubOrchestrationInstanceCreated   Type = 7
	SubOrchestrationInstanceCompleted Type = 8
	SubOrchestrationInstanceFailed    Type = 9
	TimerCreated                      Type = 10
	TimerFired                        Type = 11
	OrchestratorStarted               Type = 12
	OrchestratorCompleted             Type = 13
	EventSent                         Type = 14
	EventRaised                       Type = 15
	ContinueAsNew                     Type = 16
	GenericEvent                      Type = 17
	HistoryState                      Type = 18
	ExecutionSuspended                Type = 19
	ExecutionResumed                  Type = 20
	ExecutionRewound                  Type = 21

	// Durable entities, numbered as the Durable Task protocol numbers them. In an orchestration's
	// history, InstanceID is the target entity and RequestID ties a call to its reply and a lock
	// request to its grant and its unlocks. As messages to an entity, Parent names the sender.
	EntityOperationSignaled  Type = 23 // a one-way operation: RequestID, Name (operation), Input, FireAt (scheduled time)
	EntityOperationCalled    Type = 24 // a two-way operation: RequestID, Name, Input
	EntityOperationCompleted Type = 25 // the reply to a call: RequestID, Result
	EntityOperationFailed    Type = 26 // the failed reply to a call: RequestID, Failure
	EntityLockRequested      Type = 27 // a critical section's request: RequestID (section), LockSet, Position
	EntityLockGranted        Type = 28 // every entity of the section is locked: RequestID (section)
	EntityUnlockSent         Type = 29 // the section releases InstanceID: RequestID (section)

	// Reprise's own events, numbered from 100 so that no Durable Task type can take their
	// numbers. No Durable Task SDK knows them: the gRPC service leaves them out.

	// PatchApplied records that the execution reached ctx.IsPatched(Name) as new work and took
	// the patched path; replay answers true for the name because of it (docs/patching.md).
	PatchApplied Type = 100
)

var typeNames = [...]string{
	"ExecutionStarted", "ExecutionCompleted", "ExecutionFailed", "ExecutionTerminated",
	"TaskScheduled", "TaskCompleted", "TaskFailed", "SubOrchestrationInstanceCreated",
	"SubOrchestrationInstanceCompleted", "SubOrchestrationInstanceFailed", "TimerCreated",
	"TimerFired", "OrchestratorStarted", "OrchestratorCompleted", "EventSent", "EventRaised",
	"ContinueAsNew", "GenericEvent", "HistoryState", "ExecutionSuspended", "ExecutionResumed",
	"ExecutionRewound", "EventType(22)", "EntityOperationSignaled", "EntityOperationCalled",
	"EntityOperationCompleted", "EntityOperationFailed", "EntityLockRequested", "EntityLockGranted",
	"EntityUnlockSent",
}

func (t Type) String() string {
	if t == PatchApplied {
		return "PatchApplied"
	}
	if t >= 0 && int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("EventType(%d)", int(t))
}

// Scheduling reports whether the event records an action the orchestrator scheduled (and so
// carries a sequence number that replay must match).
func (t Type) Scheduling() bool {
	switch t {
	case TaskScheduled, SubOrchestrationInstanceCreated, TimerCreated, EventSent,
		EntityOperationSignaled, EntityOperationCalled, EntityLockRequested, EntityUnlockSent:
		return true
	}
	return false
}

// Failure describes an error: from an activity, a sub-orchestration or the orchestrator itself.
type Failure struct {
	Type         string          `json:"type,omitempty"`
	Message      string          `json:"message"`
	Details      json.RawMessage `json:"details,omitempty"`
	StackTrace   string          `json:"stackTrace,omitempty"`
	NonRetriable bool            `json:"nonRetriable,omitempty"`
	Inner        *Failure        `json:"inner,omitempty"`
}

// Text returns the failure on one line, as errors and logs show it: "type: message", or the
// message alone when there is no type; "<no message>" when there is no message at all.
func (f *Failure) Text() string {
	if f == nil || f.Message == "" && f.Type == "" {
		return "<no message>"
	}
	if f.Type == "" {
		return f.Message
	}
	if f.Message == "" {
		return f.Type + ": <no message>"
	}
	return f.Type + ": " + f.Message
}

// EncodeFailure encodes failure details as an instance stores them (store.Instance.Failure); nil
// for none.
func EncodeFailure(f *Failure) ([]byte, error) {
	if f == nil {
		return nil, nil
	}
	data, err := json.Marshal(f)
	if err != nil {
		return nil, fmt.Errorf("encode failure details: %w", err)
	}
	return data, nil
}

// DecodeFailure decodes the failure details an instance stores; nil for none. Bytes that are not
// failure details (a row written by hand or by an older version) become a failure with the bytes
// as its message, so that what was stored is still shown rather than dropped.
func DecodeFailure(data []byte) *Failure {
	if len(data) == 0 {
		return nil
	}
	if string(bytes.TrimSpace(data)) == "null" {
		return nil
	}
	var f Failure
	if json.Unmarshal(data, &f) == nil && (f.Message != "" || f.Type != "") {
		return &f
	}
	var s string
	if json.Unmarshal(data, &s) == nil {
		return &Failure{Message: s}
	}
	return &Failure{Message: string(data)}
}

// Parent identifies the orchestration that started a sub-orchestration.
type Parent struct {
	InstanceID  string `json:"instanceId"`
	ExecutionID string `json:"executionId"`
	TaskID      int32  `json:"taskId"`
	Name        string `json:"name,omitempty"`
}

// Event is one history event. ID is the sequence number of scheduling events (TaskScheduled,
// TimerCreated, SubOrchestrationInstanceCreated, EventSent, and the entity events an orchestration
// sends: see Type.Scheduling) and -1 for the others; TaskID refers
// from a completion (TaskCompleted, TimerFired, ...) to the scheduling event it completes.
type Event struct {
	ID   int32     `json:"id"`
	Type Type      `json:"type"`
	Time time.Time `json:"ts"`

	Name        string          `json:"name,omitempty"`        // activity, orchestrator, event name
	Input       json.RawMessage `json:"input,omitempty"`       // input; reason for terminate/suspend/resume/rewind
	Result      json.RawMessage `json:"result,omitempty"`      // output or result
	Failure     *Failure        `json:"failure,omitempty"`     // TaskFailed, SubOrchestrationInstanceFailed, ExecutionCompleted (failed)
	TaskID      int32           `json:"taskId,omitempty"`      // completion → scheduling event ID
	FireAt      time.Time       `json:"fireAt,omitzero"`       // TimerCreated, TimerFired
	InstanceID  string          `json:"instanceId,omitempty"`  // sub-orchestration or event target
	ExecutionID string          `json:"executionId,omitempty"` // ExecutionStarted
	Parent      *Parent         `json:"parent,omitempty"`      // ExecutionStarted of a sub-orchestration
	Status      int             `json:"status,omitempty"`      // ExecutionCompleted: runtime status
	Attempt     int             `json:"attempt,omitempty"`     // TaskScheduled: retry attempt (1-based)
	Retry       string          `json:"retry,omitempty"`       // TimerCreated: "Retry Attempt N"
	TimeoutOf   string          `json:"timeoutOf,omitempty"`   // TimerCreated: the event a WaitForEvent with a timeout waits for
	Voided      []int32         `json:"voided,omitempty"`      // ExecutionRewound: task IDs to run again (failed, or open at the failure)
	Carried     []Event         `json:"carried,omitempty"`     // ExecutionStarted after continue-as-new: kept events
	Recursive   bool            `json:"recursive,omitempty"`   // ExecutionTerminated: also terminate sub-orchestrations
	RequestID   string          `json:"requestId,omitempty"`   // entity events: the request of a signal, call or reply; the critical section of a lock request, grant or unlock
	LockSet     []string        `json:"lockSet,omitempty"`     // EntityLockRequested: the entities to lock, sorted
	Position    int             `json:"position,omitempty"`    // EntityLockRequested: the index in LockSet of the entity the request is at

	// Set by the Durable Task SDKs (gRPC workers and clients), kept and handed back as sent.
	Version string            `json:"version,omitempty"` // ExecutionStarted, TaskScheduled, SubOrchestrationInstanceCreated
	Tags    map[string]string `json:"tags,omitempty"`    // ExecutionStarted, TaskScheduled, SubOrchestrationInstanceCreated
	Trace   *TraceContext     `json:"trace,omitempty"`   // parent trace context: ExecutionStarted, TaskScheduled, SubOrchestrationInstanceCreated
	// OrchestratorStarted of the turn in which a gRPC worker first reported (or changed) its
	// orchestration span: handed back to it in the execution's later turns (LastWorkerSpan).
	WorkerSpan *WorkerSpan `json:"workerSpan,omitempty"`
}

// WorkerSpan is the orchestration span a gRPC worker keeps across its turns of one execution
// (the protocol's OrchestrationTraceContext): its span ID and start.
type WorkerSpan struct {
	SpanID string    `json:"spanId"`
	Start  time.Time `json:"start,omitzero"`
}

// LastWorkerSpan returns the worker span last recorded in an execution's history; nil for none.
func LastWorkerSpan(evs []Event) *WorkerSpan {
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].WorkerSpan != nil {
			return evs[i].WorkerSpan
		}
	}
	return nil
}

// TraceContext is a W3C trace context (traceparent, tracestate) and the span it names, as the
// Durable Task protocol carries it.
type TraceContext struct {
	TraceParent string `json:"traceParent"`
	TraceState  string `json:"traceState,omitempty"`
	SpanID      string `json:"spanId,omitempty"`
}

// New returns an event of the given type, with no sequence number, stamped now.
func New(t Type, now time.Time) Event { return Event{ID: -1, Type: t, Time: now} }

// Encode encodes a chunk of events.
func Encode(events []Event) ([]byte, error) { return json.Marshal(events) }

// Decode decodes a chunk of events.
func Decode(data []byte) ([]Event, error) {
	var events []Event
	if err := json.Unmarshal(data, &events); err != nil {
		return nil, fmt.Errorf("decode history chunk: %w", err)
	}
	return events, nil
}

// Export encodes the events of an execution as ExportHistory, the management API's
// GET instances/{id}/history and `reprise instances export` give them out: one indented JSON
// array, every field kept, the input of ReplayHistory.
func Export(events []Event) ([]byte, error) {
	if events == nil {
		events = []Event{}
	}
	return json.MarshalIndent(events, "", "  ")
}

// EncodeEvent encodes a single event (an inbox message).
func EncodeEvent(e Event) ([]byte, error) { return json.Marshal(e) }

// DecodeEvent decodes a single event.
func DecodeEvent(data []byte) (Event, error) {
	var e Event
	if err := json.Unmarshal(data, &e); err != nil {
		return Event{}, fmt.Errorf("decode event: %w", err)
	}
	return e, nil
}

// DecodeAll decodes and concatenates history chunks.
func DecodeAll(chunks [][]byte) ([]Event, error) {
	var all []Event
	for i, c := range chunks {
		events, err := Decode(c)
		if err != nil {
			return nil, fmt.Errorf("history chunk %d: %w", i, err)
		}
		all = append(all, events...)
	}
	return all, nil
}

// Lock is a critical section of an orchestration: its ID and the entities it locks.
type Lock struct {
	Section  string
	Entities []string
}

// OpenLocks returns the critical sections that the events of one execution requested
// (EntityLockRequested) and did not release (no EntityUnlockSent for the section), in request
// order; nil when there are none. A section counts from its request, granted or not: an entity may hold or queue the
// request either way. The engine releases these when the execution ends, however it ends.
func OpenLocks(events []Event) []Lock {
	var locks []Lock
	for _, e := range events {
		switch e.Type {
		case EntityLockRequested:
			if !slices.ContainsFunc(locks, func(l Lock) bool { return l.Section == e.RequestID }) {
				locks = append(locks, Lock{Section: e.RequestID, Entities: slices.Clone(e.LockSet)})
			}
		case EntityUnlockSent:
			locks = slices.DeleteFunc(locks, func(l Lock) bool { return l.Section == e.RequestID })
		}
	}
	if len(locks) == 0 {
		return nil
	}
	return locks
}

package reprise

import (
	"encoding/json"
	"errors"

	"github.com/reprise-dev/reprise/internal/control"
	"github.com/reprise-dev/reprise/internal/history"
	"github.com/reprise-dev/reprise/internal/replay"
	"github.com/reprise-dev/reprise/store"
)

// Sentinel errors; test with errors.Is. Those of instances are the control plane's own values
// (internal/control), which every front end classifies the same way.
var (
	// ErrInstanceNotFound: no instance with the ID exists in the task hub.
	ErrInstanceNotFound = control.ErrInstanceNotFound
	// ErrEntityNotFound: the entity does not exist (it was never signalled, or has no state). It
	// wraps ErrInstanceNotFound.
	ErrEntityNotFound = control.ErrEntityNotFound
	// ErrInstanceExists: starting an ID that is Pending, Running or Suspended (see ReusePolicy).
	ErrInstanceExists = control.ErrInstanceExists
	// ErrInstanceActive: the operation (purge) needs a finished instance; terminate it first.
	ErrInstanceActive = control.ErrInstanceActive
	// ErrInstanceFinished: the instance has completed, failed or been terminated, so it can no
	// longer receive events, be terminated, suspended or resumed.
	ErrInstanceFinished = control.ErrInstanceFinished
	// ErrNotFailed: only a Failed instance can be rewound.
	ErrNotFailed = control.ErrNotFailed
	// ErrTimeout: a wait for an external event ran out of time (see WaitForEvent).
	ErrTimeout = replay.ErrTimeout
	// ErrCanceled: the task (a timer) was cancelled.
	ErrCanceled = replay.ErrCanceled
	// ErrNotRegistered: no orchestrator, activity or entity with the name is registered with the App.
	ErrNotRegistered = control.ErrNotRegistered
	// ErrNotStarted: the App's client was used before App.Start or after App.Shutdown.
	ErrNotStarted = control.ErrNotStarted
	// ErrInvalidInstanceID: instance IDs must be 1 to 256 bytes of UTF-8, must not be "." or "..",
	// must not start with '@' and must not contain '/', '\\', '?', '#' or control characters.
	ErrInvalidInstanceID = control.ErrInvalidInstanceID
	// ErrInvalidArgument: an argument is malformed (an empty event name, a payload that is not
	// JSON-serialisable or not UTF-8, text that is not UTF-8 or holds NUL, a date outside
	// store.MinTime to store.MaxTime, a filter on a status that does not apply). It is the
	// store's ErrInvalidArgument, so what a store refuses tests the same.
	ErrInvalidArgument = control.ErrInvalidArgument
)

// FailureDetails describes why an activity, a sub-orchestration or an orchestration failed.
type FailureDetails struct {
	Type         string          `json:"type,omitempty"`    // the error's type, e.g. "*fs.PathError" or an Error's Type
	Message      string          `json:"message"`           // the error message
	Details      json.RawMessage `json:"details,omitempty"` // Error.Details, as JSON
	StackTrace   string          `json:"stackTrace,omitempty"`
	NonRetriable bool            `json:"nonRetriable,omitempty"`
	Inner        *FailureDetails `json:"inner,omitempty"` // the failure this one wraps
}

func failureDetails(f *history.Failure) *FailureDetails {
	if f == nil {
		return nil
	}
	return &FailureDetails{Type: f.Type, Message: f.Message, Details: f.Details, StackTrace: f.StackTrace,
		NonRetriable: f.NonRetriable, Inner: failureDetails(f.Inner)}
}

// Error is an error with a type name and details, for activities and orchestrators that want
// their callers to see more than a message. NonRetriable stops retry policies.
type Error struct {
	Type         string
	Message      string
	Details      any // marshalled to JSON
	NonRetriable bool
}

func (e *Error) Error() string {
	if e.Type == "" {
		return e.Message
	}
	return e.Type + ": " + e.Message
}

// TaskFailedError is the error an orchestrator gets when an activity, a sub-orchestration or an
// entity operation (CallEntity) fails.
type TaskFailedError struct {
	Kind    string   // "activity", "sub-orchestration" or "entity"
	Name    string   // the activity, the orchestrator, or the entity's operation
	Entity  EntityID // Kind "entity": the entity whose operation failed
	TaskID  int
	Failure *FailureDetails
}

func (e *TaskFailedError) Error() string {
	// The executor's error says it: one wording for the task failures of all kinds.
	fe := &replay.FailedError{Kind: e.Kind, Name: e.Name, TaskID: int32(e.TaskID), Failure: historyFailure(e.Failure)}
	if e.Kind == "entity" {
		fe.Entity = e.Entity.String()
	}
	return fe.Error()
}

// publicError converts an error from the executor into the public types.
func publicError(err error) error {
	var fe *replay.FailedError
	if errors.As(err, &fe) {
		te := &TaskFailedError{Kind: fe.Kind, Name: fe.Name, TaskID: int(fe.TaskID), Failure: failureDetails(fe.Failure)}
		if name, key, ok := store.ParseEntityInstanceID(fe.Entity); ok {
			te.Entity = EntityID{Name: name, Key: key}
		}
		return te
	}
	return err
}

// describedError carries failure details through the engine.
type describedError struct{ f *history.Failure }

func (d describedError) Error() string             { return d.f.Message }
func (d describedError) Failure() *history.Failure { return d.f }

// internalError converts a user's error into one the engine records with its details.
func internalError(err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		f := &history.Failure{Type: e.Type, Message: e.Message, NonRetriable: e.NonRetriable}
		if e.Type == "" {
			f.Type = "reprise.Error"
		}
		if e.Details != nil {
			if d, merr := json.Marshal(e.Details); merr == nil {
				f.Details = d
			}
		}
		return describedError{f}
	}
	var tf *TaskFailedError
	if errors.As(err, &tf) {
		return describedError{&history.Failure{Type: "TaskFailed", Message: err.Error(), Inner: historyFailure(tf.Failure)}}
	}
	return describedError{&history.Failure{Type: history.ErrorType(err), Message: err.Error()}}
}

func historyFailure(f *FailureDetails) *history.Failure {
	if f == nil {
		return nil
	}
	return &history.Failure{Type: f.Type, Message: f.Message, Details: f.Details, StackTrace: f.StackTrace,
		NonRetriable: f.NonRetriable, Inner: historyFailure(f.Inner)}
}

package replay

import (
	"errors"
	"fmt"

	"github.com/reprise-dev/reprise/internal/history"
)

// Errors a task can complete with besides a failure.
var (
	// ErrCanceled completes a timer (or a wait) cancelled by the orchestrator.
	ErrCanceled = errors.New("task canceled")
	// ErrTimeout completes a wait for an external event whose timeout fired first.
	ErrTimeout = errors.New("timed out waiting for the external event")
)

// FailedError is the error of a task whose activity, sub-orchestration or entity operation
// failed.
type FailedError struct {
	Kind    string // "activity", "sub-orchestration" or "entity"
	Name    string // the activity, the orchestrator, or the entity's operation
	Entity  string // Kind "entity": the entity's instance ID
	TaskID  int32
	Failure *history.Failure
}

func (e *FailedError) Error() string {
	if e.Kind == "entity" {
		return fmt.Sprintf("operation %q of entity %q (task %d) failed: %s", e.Name, e.Entity, e.TaskID, e.Failure.Text())
	}
	return fmt.Sprintf("%s %q (task %d) failed: %s", e.Kind, e.Name, e.TaskID, e.Failure.Text())
}

// Task is a durable task as the orchestrator sees it: an activity call, a timer, a
// sub-orchestration, an external event, or a combination of tasks. Tasks complete only while the
// executor applies events, in history order, so completion order is the same on every replay.
type Task struct {
	x      *Execution
	done   bool
	result []byte
	err    error
	onDone []func(*Task)

	canceled bool // a timer cancelled by the orchestrator
}

// Done reports whether the task has completed.
func (t *Task) Done() bool { return t.done }

// Await blocks the orchestrator until the task completes and returns its result.
func (t *Task) Await() ([]byte, error) {
	t.x.await(t)
	return t.result, t.err
}

// Cancel cancels a pending timer task (or a combination holding one): the task completes at once
// with ErrCanceled and its firing is ignored. Cancelling a completed task does nothing.
func (t *Task) Cancel() {
	if t.done {
		return
	}
	t.canceled = true
	t.complete(nil, ErrCanceled)
}

func (t *Task) complete(result []byte, err error) {
	if t.done {
		return
	}
	t.done, t.result, t.err = true, result, err
	for _, f := range t.onDone {
		f(t)
	}
	t.onDone = nil
}

func (t *Task) then(f func(*Task)) {
	if t.done {
		f(t)
		return
	}
	t.onDone = append(t.onDone, f)
}

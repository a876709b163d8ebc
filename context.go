package reprise

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/reprise-dev/reprise/internal/control"
	"github.com/reprise-dev/reprise/internal/replay"
	"github.com/reprise-dev/reprise/store"
)

// OrchestrationContext is an orchestrator's view of the durable world. Everything an orchestrator
// does that is not pure computation goes through it: calling activities and sub-orchestrations,
// timers, external events, the current time, new IDs and logging. These are recorded in the
// history and replayed, so orchestrator code must be deterministic: no direct I/O, no time.Now,
// no random numbers, no goroutines, no map iteration order that decides what to call. Use the
// context from the orchestrator's goroutine only.
type OrchestrationContext struct {
	rc     *replay.Context
	logger *slog.Logger
	base   *slog.Logger
}

// InstanceID returns the ID of the orchestration instance.
func (c *OrchestrationContext) InstanceID() string { return c.rc.InstanceID() }

// ParentInstanceID returns the parent's instance ID for a sub-orchestration, else "".
func (c *OrchestrationContext) ParentInstanceID() string { return c.rc.ParentInstanceID() }

// Name returns the orchestrator's name.
func (c *OrchestrationContext) Name() string { return c.rc.Name() }

// Now returns the replay-safe current time (UTC): the time the current episode started. Use it
// instead of time.Now.
func (c *OrchestrationContext) Now() time.Time { return c.rc.Now() }

// Version returns the orchestration version the instance was started with (see WithVersion and
// WithVersioning), "" for an instance started without one. It is fixed for the instance's life:
// restarts, rewinds and continue-as-new keep it.
func (c *OrchestrationContext) Version() string { return c.rc.Version() }

// IsReplaying reports whether the orchestrator is re-running code that ran before (replay).
func (c *OrchestrationContext) IsReplaying() bool { return c.rc.IsReplaying() }

// IsPatched guards a change to an orchestrator's code that running instances must not see: it
// reports whether this execution takes the new (patched) path at the patch name. Executions that
// reach the call as new work, after the code with the call was deployed, get true, and the
// answer is recorded in the history (a PatchApplied event); an execution that ran past that point
// before the deploy gets false when it replays, and keeps making the calls its history recorded:
//
//	if ctx.IsPatched("send-receipt") {
//		if _, err := SendReceipt.Call(ctx, order).Await(); err != nil {
//			return nil, err
//		}
//	}
//
// "Replaying" is as IsReplaying tells it: re-running code to catch up with the history stored
// by earlier steps. The first answer for a name holds for the rest of the execution; a new
// execution (continue-as-new) starts afresh and gets true. Names are compared exactly; one name
// may guard several places that change together.
//
// To remove a patch once every execution that could answer false has finished, delete the call
// and the old path and keep the new path: a PatchApplied event that the code no longer asks for
// does not disturb replay (docs/patching.md). The name must be non-empty UTF-8 without NUL, at
// most 2048 bytes; any other name is a programming error and panics, failing the orchestration.
func (c *OrchestrationContext) IsPatched(name string) bool {
	if name == "" {
		panic("reprise: IsPatched with an empty patch name; name the change, for example \"send-receipt\"")
	}
	if err := store.CheckText("patch name", name, control.MaxNameBytes); err != nil {
		panic(fmt.Sprintf("reprise: IsPatched: %v; use a name of valid UTF-8 without NUL, at most %d bytes",
			err, control.MaxNameBytes))
	}
	return c.rc.IsPatched(name)
}

// NewUUID returns a replay-safe UUID: the same on every replay, different for every call.
func (c *OrchestrationContext) NewUUID() string { return c.rc.NewUUID() }

// Logger returns a logger that is silent while the orchestrator replays, so each line is logged
// once. Records carry the instance ID and the orchestrator's name.
func (c *OrchestrationContext) Logger() *slog.Logger {
	if c.logger == nil {
		c.logger = slog.New(replaySafeHandler{c.base.Handler(), c.rc}).With(
			"instanceId", c.rc.InstanceID(), "orchestrator", c.rc.Name())
	}
	return c.logger
}

// GetInput decodes the orchestration's JSON input into v (for untyped orchestrators).
func (c *OrchestrationContext) GetInput(v any) error {
	return decode(c.rc.Input(), v)
}

// SetCustomStatus sets a JSON-serialisable value shown as the instance's customStatus.
func (c *OrchestrationContext) SetCustomStatus(v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("custom status must be JSON-serialisable: %w", err)
	}
	c.rc.SetCustomStatus(data)
	return nil
}

// ContinueAsNew restarts the orchestration with a new input when the orchestrator returns: the
// history is cleared and a new execution starts, with the same instance ID. The orchestrator's
// return value is ignored. With keepEvents, external events received but not yet consumed are
// delivered to the new execution instead of being dropped.
func (c *OrchestrationContext) ContinueAsNew(input any, keepEvents bool) error {
	data, err := json.Marshal(input)
	if err != nil {
		return fmt.Errorf("continue-as-new input must be JSON-serialisable: %w", err)
	}
	c.rc.ContinueAsNew(data, keepEvents)
	return nil
}

// CreateTimer returns a durable timer that fires after d. It survives restarts. Cancel a timer
// that is no longer needed (for example after Any) so it does not keep the orchestration waiting.
func (c *OrchestrationContext) CreateTimer(d time.Duration) *Task[None] {
	return c.CreateTimerAt(c.rc.Now().Add(d))
}

// CreateTimerAt returns a durable timer that fires at t. A time outside the stores' range (see
// store.MinTime and store.MaxTime) fails the task at once: a store cannot keep it.
func (c *OrchestrationContext) CreateTimerAt(t time.Time) *Task[None] {
	if err := store.CheckTime("timer fire time", t); err != nil {
		return &Task[None]{t: c.rc.Failed(fmt.Errorf("create timer: %w", err))}
	}
	return &Task[None]{t: c.rc.CreateTimer(t)}
}

// SendEvent raises an external event on another orchestration instance (fire and forget).
func (c *OrchestrationContext) SendEvent(instanceID, name string, data any) error {
	raw, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("event data must be JSON-serialisable: %w", err)
	}
	// Checked here, deterministically: a store refuses such text, and a commit it refuses would
	// be retried for ever.
	if err := control.CheckID(instanceID); err != nil {
		return fmt.Errorf("send event: %w", err)
	}
	if err := control.CheckText("event name", name, control.MaxNameBytes); err != nil {
		return fmt.Errorf("send event to %q: %w", instanceID, err)
	}
	if err := control.CheckPayload("event data", raw); err != nil {
		return fmt.Errorf("send event %q to %q: %w", name, instanceID, err)
	}
	c.rc.SendEvent(instanceID, name, raw)
	return nil
}

// Task is a durable task: an activity call, a sub-orchestration, a timer, an external event, or a
// combination. Await it from the orchestrator.
type Task[T any] struct {
	t   *replay.Task
	get func() (T, error) // derives the value of combined tasks
}

// Awaitable is any Task, for Any.
type Awaitable interface{ task() *replay.Task }

func (t *Task[T]) task() *replay.Task { return t.t }

// Await blocks the orchestrator until the task completes and returns its result. A failed
// activity or sub-orchestration returns a *TaskFailedError.
func (t *Task[T]) Await() (T, error) {
	var zero T
	raw, err := t.t.Await()
	if err != nil {
		return zero, publicError(err)
	}
	if t.get != nil {
		return t.get()
	}
	var v T
	if err := decode(raw, &v); err != nil {
		return zero, fmt.Errorf("decoding task result into %T: %w", v, err)
	}
	return v, nil
}

// Done reports whether the task has completed.
func (t *Task[T]) Done() bool { return t.t.Done() }

// Cancel cancels a timer (or a wait with a timeout): it completes at once with ErrCanceled and no
// longer keeps the orchestration waiting. It does nothing to completed tasks or activities.
func (t *Task[T]) Cancel() {
	t.t.Cancel()
}

func decode(raw []byte, v any) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	return json.Unmarshal(raw, v)
}

// None is the input or output type of definitions that take or return nothing. It is JSON null.
type None struct{}

// MarshalJSON encodes None as null.
func (None) MarshalJSON() ([]byte, error) { return []byte("null"), nil }

// UnmarshalJSON accepts and ignores any value.
func (*None) UnmarshalJSON([]byte) error { return nil }

// CallOption configures an activity or sub-orchestration call.
type CallOption interface{ applyCall(*callConfig) }

type callConfig struct {
	retry      *RetryPolicy
	instanceID string
	version    string
}

type retryOption struct{ p RetryPolicy }

func (o retryOption) applyCall(c *callConfig) { p := o.p; c.retry = &p }

// WithRetry retries the call according to the policy.
func WithRetry(p RetryPolicy) CallOption { return retryOption{p} }

// InstanceIDOption sets an instance ID: for Start, or for a sub-orchestration call.
type InstanceIDOption string

func (o InstanceIDOption) applyCall(c *callConfig)   { c.instanceID = string(o) }
func (o InstanceIDOption) applyStart(c *startConfig) { c.instanceID = string(o) }

// WithInstanceID sets the instance ID of a new orchestration (Start) or sub-orchestration (Call).
func WithInstanceID(id string) InstanceIDOption { return InstanceIDOption(id) }

func callConfigOf(opts []CallOption) callConfig {
	var c callConfig
	for _, o := range opts {
		o.applyCall(&c)
	}
	return c
}

// CallActivity calls an activity by name (for dynamic cases; prefer Activity.Call). O is the type
// its result is decoded into.
func CallActivity[O any](ctx *OrchestrationContext, name string, input any, opts ...CallOption) *Task[O] {
	data, err := json.Marshal(input)
	if err != nil {
		return &Task[O]{t: ctx.rc.Failed(fmt.Errorf("activity %q: input must be JSON-serialisable: %w", name, err))}
	}
	if err := errors.Join(control.CheckText("activity name", name, control.MaxNameBytes), control.CheckPayload("input", data)); err != nil {
		return &Task[O]{t: ctx.rc.Failed(fmt.Errorf("activity %q: %w", name, err))}
	}
	cfg := callConfigOf(opts)
	if err := store.CheckVersion(cfg.version); err != nil {
		return &Task[O]{t: ctx.rc.Failed(fmt.Errorf("activity %q: %w", name, err))}
	}
	return &Task[O]{t: ctx.rc.CallActivity(name, cfg.version, data, cfg.retry.internal())}
}

// CallSubOrchestrator starts a sub-orchestration by name and returns a task for its output (prefer
// Orchestrator.Call). Its instance ID is derived from the parent's unless WithInstanceID is given.
func CallSubOrchestrator[O any](ctx *OrchestrationContext, name string, input any, opts ...CallOption) *Task[O] {
	data, err := json.Marshal(input)
	if err != nil {
		return &Task[O]{t: ctx.rc.Failed(fmt.Errorf("sub-orchestrator %q: input must be JSON-serialisable: %w", name, err))}
	}
	if err := errors.Join(control.CheckText("orchestrator name", name, control.MaxNameBytes), control.CheckPayload("input", data)); err != nil {
		return &Task[O]{t: ctx.rc.Failed(fmt.Errorf("sub-orchestrator %q: %w", name, err))}
	}
	cfg := callConfigOf(opts)
	if cfg.instanceID != "" {
		if err := ValidateInstanceID(cfg.instanceID); err != nil {
			return &Task[O]{t: ctx.rc.Failed(err)}
		}
	}
	if err := store.CheckVersion(cfg.version); err != nil {
		return &Task[O]{t: ctx.rc.Failed(fmt.Errorf("sub-orchestrator %q: %w", name, err))}
	}
	return &Task[O]{t: ctx.rc.CallSubOrchestrator(name, cfg.instanceID, cfg.version, data, cfg.retry.internal())}
}

// WaitForEvent returns a task completed by the next external event with the name (names are
// case-insensitive); T is the type its data is decoded into. Events raised before the wait are
// kept, in order, and delivered to the next waits. With a positive timeout, the task fails with
// ErrTimeout if no event arrives in time; a zero timeout waits for ever.
func WaitForEvent[T any](ctx *OrchestrationContext, name string, timeout time.Duration) *Task[T] {
	if timeout > 0 {
		if err := store.CheckTime("event timeout", ctx.rc.Now().Add(timeout)); err != nil {
			return &Task[T]{t: ctx.rc.Failed(fmt.Errorf("wait for event %q: %w", name, err))}
		}
	}
	return &Task[T]{t: ctx.rc.WaitForEvent(name, timeout)}
}

// All returns a task that completes when all tasks have completed, with their results in order.
// If any failed, its error is the first failure in argument order.
func All[T any](ctx *OrchestrationContext, tasks ...*Task[T]) *Task[[]T] {
	inner := make([]*replay.Task, 0, len(tasks))
	for _, t := range tasks {
		inner = append(inner, t.t)
	}
	return &Task[[]T]{t: ctx.rc.All(inner...), get: func() ([]T, error) {
		out := make([]T, len(tasks))
		for i, t := range tasks {
			v, err := t.Await() // already complete: returns at once
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	}}
}

// Any returns a task that completes when the first of the tasks completes; its value is that
// task's index. Await the winner itself for its result.
func Any(ctx *OrchestrationContext, tasks ...Awaitable) *Task[int] {
	inner := make([]*replay.Task, 0, len(tasks))
	for _, t := range tasks {
		inner = append(inner, t.task())
	}
	a := ctx.rc.Any(inner...)
	return &Task[int]{t: a.Task, get: func() (int, error) { return a.Winner(), nil }}
}

// replaySafeHandler drops log records while the orchestrator replays.
type replaySafeHandler struct {
	slog.Handler
	rc *replay.Context
}

func (h replaySafeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return !h.rc.IsReplaying() && h.Handler.Enabled(ctx, l)
}

func (h replaySafeHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return replaySafeHandler{h.Handler.WithAttrs(attrs), h.rc}
}

func (h replaySafeHandler) WithGroup(name string) slog.Handler {
	return replaySafeHandler{h.Handler.WithGroup(name), h.rc}
}

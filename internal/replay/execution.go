// Package replay runs orchestrator functions against their history.
//
// An Execution is one live run of an orchestrator. The orchestrator runs in a goroutine of its
// own, but never at the same time as the executor: control passes back and forth over channels, so
// the orchestrator's code needs no locks. The executor applies history events one at a time; each
// event may complete a task, and when the task the orchestrator awaits is complete, the executor
// hands control to the orchestrator until it awaits again or returns. Scheduling calls get
// consecutive sequence numbers; replayed scheduling events must match them (same kind, same
// name), else the run is non-deterministic.
//
// An Execution can be kept between episodes (the engine caches it): the next episode only applies
// the new events, so an episode costs O(new events), not O(history).
package replay

import (
	"crypto/sha1"
	"errors"
	"fmt"
	"math"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	"github.com/reprise-dev/reprise/internal/history"
	"github.com/reprise-dev/reprise/store"
)

// Func is an orchestrator as the executor runs it: it reads its input from the context and returns
// its JSON output.
type Func func(c *Context) (output []byte, err error)

// ErrNonDeterminism is what every *NonDeterminismError wraps.
var ErrNonDeterminism = errors.New("non-deterministic orchestrator")

// PanicError reports that the orchestrator panicked while it replayed history. A panic in new
// work fails the orchestration like a returned error does (Result.Failure, type "panic"); during
// replay the events after the panic can no longer be checked, so Run stops and returns this
// instead of reporting the history's next event as non-determinism.
type PanicError struct {
	Failure *history.Failure // type "panic", the panic's value as message, the stack
}

func (e *PanicError) Error() string {
	return e.Failure.Message + " (while replaying history)\n" + e.Failure.StackTrace
}

// NonDeterminismError reports that the orchestrator's code no longer matches its history.
type NonDeterminismError struct {
	Expected string // what history recorded
	Actual   string // what the code did
}

// Unwrap makes errors.Is(err, ErrNonDeterminism) hold.
func (e *NonDeterminismError) Unwrap() error { return ErrNonDeterminism }

func (e *NonDeterminismError) Error() string {
	return fmt.Sprintf("%v: history has %s, but the code %s; "+
		"orchestrator code must make the same durable calls in the same order on every replay "+
		"(deploy code that matches, then rewind the instance)", ErrNonDeterminism, e.Expected, e.Actual)
}

// RetryPolicy makes a failed activity or sub-orchestration run again after durable timers.
type RetryPolicy struct {
	FirstInterval time.Duration
	Backoff       float64 // ≤ 0 means 1
	MaxInterval   time.Duration
	MaxAttempts   int
	Timeout       time.Duration // since the first attempt; 0 means none
	Handle        func(error) bool
}

// ContinueAsNew is the request of an orchestrator to start over with a new input.
type ContinueAsNew struct {
	Input   []byte
	Carried []history.Event // unprocessed external events kept for the new execution
	Version string          // the new execution's version; "" keeps the current one
}

// Result is what an episode produced.
type Result struct {
	Actions []history.Event // new scheduling events, in sequence order
	Done    bool
	Status  store.Status // Running, Suspended, or the final status when Done
	Output  []byte
	Failure *history.Failure

	CustomStatus  []byte
	ContinueAsNew *ContinueAsNew
	// OpenSubOrchestrations lists sub-orchestrations started and not finished (for recursive terminate).
	OpenSubOrchestrations []string
	// Recursive is set when the execution was terminated with the recursive flag.
	Recursive bool
	// WorkerSpan is the orchestration span a gRPC worker reported with the turn; nil for none.
	WorkerSpan *history.WorkerSpan
	// Markers are the PatchApplied events of this episode (see Context.IsPatched), in call
	// order: history to record with the episode, not actions to carry out.
	Markers []history.Event
}

// Execution is one live run of an orchestrator.
type Execution struct {
	fn Func
	c  *Context

	// coroutine hand-off
	resume   chan struct{}
	yield    chan struct{}
	started  bool
	finished bool
	aborting bool
	waiting  *Task

	// completion
	done     bool
	status   store.Status
	output   []byte
	failure  *history.Failure
	panicked *PanicError // set when the orchestrator panicked while replaying
	canCarry []history.Event

	recursive bool
	suspended bool
	held      []history.Event // events that arrived while suspended

	yieldTimeout time.Duration  // see SetYieldTimeout
	yieldTimer   *time.Timer    // waitYield's, made at the first hand-off
	stuck        bool           // the orchestrator did not yield (or unwind) in time; its goroutine is lost
	abandoned    chan struct{}  // closed when stuck: the lost goroutine's hand-backs do not block
	unwindErr    *DeadlockError // the orchestrator's deferred calls blocked an abort (see Close)
}

// New returns an execution of fn that has not started; the first applied ExecutionStarted event
// starts it.
func New(fn Func) *Execution {
	x := &Execution{fn: fn, resume: make(chan struct{}), yield: make(chan struct{}), abandoned: make(chan struct{})}
	x.c = &Context{
		x:        x,
		open:     map[int32]*Task{},
		pending:  map[int32]history.Event{},
		waiters:  map[string][]*Task{},
		buffered: map[string][]history.Event{},
		subs:     map[int32]string{},
	}
	return x
}

// Context returns the orchestration context of the execution.
func (x *Execution) Context() *Context { return x.c }

// Run applies history: old events (already committed; replayed) and then new events (this
// episode's). It returns the episode's result, a *NonDeterminismError, a *PanicError when the
// orchestrator panicked while replaying, or a *DeadlockError (see SetYieldTimeout). After an
// error the execution must be closed.
func (x *Execution) Run(old, new []history.Event) (res *Result, err error) {
	defer recoverDeadlock(&err)
	skip := voided(old, new)
	x.c.notePatches(old)
	x.c.replaying = true
	for i, e := range old {
		if skip[i] {
			continue
		}
		if err := x.apply(e, true); err != nil {
			return nil, err
		}
		if x.panicked != nil {
			return nil, x.panicked
		}
	}
	// Actions scheduled past the end of history mean the code diverged, unless a rewind voided
	// failures: then code that was fixed legitimately goes further than before.
	if len(x.c.pending) > 0 && len(old) > 0 && len(skip) == 0 {
		ids := x.pendingIDs()
		e := x.c.pending[ids[0]]
		return nil, &NonDeterminismError{
			Expected: "no further scheduled task",
			Actual:   "scheduled " + describe(e),
		}
	}
	x.c.replaying = false
	for i, e := range new {
		if skip[len(old)+i] {
			continue
		}
		if x.done {
			if x.c.can != nil && x.c.can.keep && e.Type == history.EventRaised {
				x.canCarry = append(x.canCarry, e)
			}
			continue
		}
		if err := x.apply(e, false); err != nil {
			return nil, err
		}
	}
	return x.collect(), nil
}

// Voided returns the positions in old followed by new of the events that replay skips because of
// a rewind (see voided), so that an executor elsewhere (a gRPC worker) can be shown the history
// that replay sees.
func Voided(old, new []history.Event) map[int]bool { return voided(old, new) }

// voided marks the events that replay skips because of a rewind: the failures an
// ExecutionRewound names and the failed completion of the execution, which the rewind runs again,
// and the copies of the re-run tasks' scheduling events that the engine records after the
// ExecutionRewound (their originals were matched already).
func voided(old, new []history.Event) map[int]bool {
	var skip map[int]bool
	mark := func(i int) {
		if skip == nil {
			skip = map[int]bool{}
		}
		skip[i] = true
	}
	at := func(i int) history.Event {
		if i < len(old) {
			return old[i]
		}
		return new[i-len(old)]
	}
	rerun := map[int32]bool{}
	for i := range len(old) + len(new) {
		switch e := at(i); e.Type {
		case history.ExecutionRewound:
			for _, id := range e.Voided {
				rerun[id] = true
			}
		case history.TaskScheduled, history.SubOrchestrationInstanceCreated:
			if rerun[e.ID] {
				mark(i)
				delete(rerun, e.ID)
			}
		}
	}
	ids := map[int32]bool{}
	rewound := false
	for i := len(old) + len(new) - 1; i >= 0; i-- {
		e := at(i)
		switch e.Type {
		case history.ExecutionRewound:
			rewound = true
			for _, id := range e.Voided {
				ids[id] = true
			}
		case history.TaskFailed, history.SubOrchestrationInstanceFailed:
			if ids[e.TaskID] {
				mark(i)
				delete(ids, e.TaskID) // only the last failure of a task before the rewind
			}
		case history.ExecutionCompleted:
			if rewound && e.Status == int(store.StatusFailed) {
				mark(i)
			}
		}
	}
	return skip
}

func (x *Execution) pendingIDs() []int32 {
	ids := make([]int32, 0, len(x.c.pending))
	for id := range x.c.pending {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

func (x *Execution) collect() *Result {
	r := &Result{CustomStatus: x.c.customStatus, Recursive: x.recursive, Markers: x.c.markers}
	for _, id := range x.pendingIDs() {
		r.Actions = append(r.Actions, x.c.pending[id])
	}
	clear(x.c.pending)
	x.c.markers = nil
	if x.done {
		r.Done, r.Status, r.Output, r.Failure = true, x.status, x.output, x.failure
		if x.status == store.StatusContinuedAsNew && x.c.can != nil {
			can := &ContinueAsNew{Input: x.c.can.input}
			if x.c.can.keep {
				for _, name := range sortedKeys(x.c.buffered) {
					can.Carried = append(can.Carried, x.c.buffered[name]...)
				}
				can.Carried = append(can.Carried, x.held...)
				can.Carried = append(can.Carried, x.canCarry...)
			}
			r.ContinueAsNew = can
		}
	} else if x.suspended {
		r.Status = store.StatusSuspended
	} else if !x.started {
		r.Status = store.StatusPending
	} else {
		r.Status = store.StatusRunning
	}
	for _, id := range sortedInt32Keys(x.c.subs) {
		r.OpenSubOrchestrations = append(r.OpenSubOrchestrations, x.c.subs[id])
	}
	return r
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func sortedInt32Keys[V any](m map[int32]V) []int32 {
	keys := make([]int32, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	return keys
}

// apply applies one event.
func (x *Execution) apply(e history.Event, replaying bool) error {
	c := x.c
	if x.suspended && holdWhileSuspended(e.Type) {
		x.held = append(x.held, e)
		return nil
	}
	switch e.Type {
	case history.OrchestratorStarted:
		c.now = e.Time
	case history.ExecutionStarted:
		if x.started {
			return nil // a duplicate start of a running execution: ignore
		}
		c.name, c.input, c.parent, c.version = e.Name, e.Input, e.Parent, e.Version
		c.instanceID = e.InstanceID
		if c.now.IsZero() {
			c.now = e.Time
		}
		// Carried events are older than any event that reached the new execution before its
		// start, so they go first.
		for i := len(e.Carried) - 1; i >= 0; i-- {
			ev := e.Carried[i]
			key := strings.ToLower(ev.Name)
			c.buffered[key] = append([]history.Event{ev}, c.buffered[key]...)
		}
		x.started = true
		x.switchTo()
	case history.TaskScheduled, history.TimerCreated, history.SubOrchestrationInstanceCreated, history.EventSent,
		history.EntityOperationSignaled, history.EntityOperationCalled, history.EntityLockRequested, history.EntityUnlockSent:
		if !replaying {
			return nil // scheduling events are produced by this episode, not fed to it
		}
		got, ok := c.pending[e.ID]
		if !ok {
			return &NonDeterminismError{Expected: describe(e), Actual: "did not schedule it"}
		}
		if got.Type != e.Type || !strings.EqualFold(got.Name, e.Name) {
			return &NonDeterminismError{Expected: describe(e), Actual: "scheduled " + describe(got)}
		}
		if d := describeEntity(e); d != "" {
			if err := matchEntity(e, got); err != nil {
				return err
			}
		}
		delete(c.pending, e.ID)
	case history.EntityOperationCompleted, history.EntityOperationFailed:
		x.applyEntityReply(e)
	case history.EntityLockGranted:
		x.applyLockGranted(e)
	case history.TaskCompleted, history.SubOrchestrationInstanceCompleted:
		delete(c.subs, e.TaskID)
		x.completeOpen(e.TaskID, e.Result)
	case history.TaskFailed, history.SubOrchestrationInstanceFailed:
		delete(c.subs, e.TaskID)
		if t, ok := c.open[e.TaskID]; ok {
			kind, name := "activity", ""
			if e.Type == history.SubOrchestrationInstanceFailed {
				kind = "sub-orchestration"
			}
			if f, ok := c.failInfo[e.TaskID]; ok {
				name = f
			}
			delete(c.open, e.TaskID)
			t.complete(nil, &FailedError{Kind: kind, Name: name, TaskID: e.TaskID, Failure: e.Failure})
			x.continueIfReady()
		}
	case history.TimerFired:
		x.completeOpen(e.TaskID, nil)
	case history.EventRaised:
		key := strings.ToLower(e.Name)
		if ws := c.waiters[key]; len(ws) > 0 {
			c.waiters[key] = ws[1:]
			ws[0].complete(e.Input, nil)
			x.continueIfReady()
		} else {
			c.buffered[key] = append(c.buffered[key], e)
		}
	case history.ExecutionSuspended:
		x.suspended = true
	case history.ExecutionResumed:
		x.suspended = false
		held := x.held
		x.held = nil
		for _, h := range held {
			if x.done {
				break
			}
			if err := x.apply(h, replaying); err != nil {
				return err
			}
		}
	case history.ExecutionTerminated:
		x.recursive = e.Recursive
		x.finish(store.StatusTerminated, e.Input, nil)
		x.abort()
	case history.ExecutionCompleted:
		if !x.done {
			actual := "is still waiting on a task"
			if ids := x.pendingIDs(); len(ids) > 0 {
				actual = "scheduled " + describe(c.pending[ids[0]]) + " and waits"
			}
			return &NonDeterminismError{
				Expected: fmt.Sprintf("the orchestration finished (%s)", store.Status(e.Status)),
				Actual:   actual,
			}
		}
	}
	return nil
}

// holdWhileSuspended reports whether an event waits for resume when the execution is suspended.
func holdWhileSuspended(t history.Type) bool {
	switch t {
	case history.TaskCompleted, history.TaskFailed, history.SubOrchestrationInstanceCompleted,
		history.SubOrchestrationInstanceFailed, history.TimerFired, history.EventRaised,
		history.ExecutionStarted, history.EntityOperationCompleted, history.EntityOperationFailed,
		history.EntityLockGranted:
		return true
	}
	return false
}

func (x *Execution) completeOpen(id int32, result []byte) {
	t, ok := x.c.open[id]
	if !ok {
		return // stale, duplicate or cancelled: nothing waits for it
	}
	delete(x.c.open, id)
	t.complete(result, nil)
	x.continueIfReady()
}

func describe(e history.Event) string {
	switch e.Type {
	case history.TaskScheduled:
		return fmt.Sprintf("CallActivity #%d %q", e.ID, e.Name)
	case history.SubOrchestrationInstanceCreated:
		return fmt.Sprintf("CallSubOrchestrator #%d %q", e.ID, e.Name)
	case history.TimerCreated:
		return fmt.Sprintf("CreateTimer #%d", e.ID)
	case history.EventSent:
		return fmt.Sprintf("SendEvent #%d %q", e.ID, e.Name)
	}
	if d := describeEntity(e); d != "" {
		return d
	}
	return fmt.Sprintf("%s #%d", e.Type, e.ID)
}

// continueIfReady hands control to the orchestrator when the task it awaits has completed.
func (x *Execution) continueIfReady() {
	if x.started && !x.finished && x.waiting != nil && x.waiting.done {
		x.switchTo()
	}
}

// switchTo runs the orchestrator until it awaits an incomplete task or returns.
func (x *Execution) switchTo() {
	if !x.finished {
		if x.waiting == nil && !x.aborting {
			go x.main()
		} else {
			x.resume <- struct{}{}
		}
		x.waitYield()
	}
}

func (x *Execution) main() {
	var out []byte
	var err error
	completed := false
	defer func() {
		if x.aborting {
			x.handBack() // abort sets x.finished, unless it gave up on this goroutine
			return
		}
		x.finished = true
		if r := recover(); r != nil {
			f := &history.Failure{
				Type:       "panic",
				Message:    fmt.Sprintf("orchestrator panicked: %v", r),
				StackTrace: string(debug.Stack()),
			}
			x.finish(store.StatusFailed, nil, f)
			if x.c.replaying {
				x.panicked = &PanicError{Failure: f}
			}
		} else if completed {
			switch {
			case x.c.can != nil && err == nil:
				x.finish(store.StatusContinuedAsNew, nil, nil)
			case err != nil:
				x.finish(store.StatusFailed, nil, FailureFromError(err))
			default:
				x.finish(store.StatusCompleted, out, nil)
			}
		}
		x.handBack()
	}()
	out, err = x.fn(x.c)
	completed = true
}

// await parks the orchestrator until t completes. It runs on the orchestrator's goroutine.
func (x *Execution) await(t *Task) {
	for !t.done {
		if x.aborting || x.finished {
			runtime.Goexit()
		}
		x.waiting = t
		if !x.handBack() {
			runtime.Goexit() // abandoned: nobody will resume it
		}
		<-x.resume
		if x.aborting {
			runtime.Goexit()
		}
	}
	x.waiting = nil
}

func (x *Execution) finish(status store.Status, output []byte, f *history.Failure) {
	if x.done {
		return
	}
	x.done, x.status, x.output, x.failure = true, status, output, f
}

// abort unwinds a parked orchestrator goroutine (its deferred calls run); it returns when the
// goroutine has exited or, if the deferred calls block past the yield timeout, abandons the
// goroutine (see waitUnwind).
func (x *Execution) abort() {
	if x.stuck {
		return // nothing can unwind it: it is not parked
	}
	if x.started && !x.finished && x.waiting != nil {
		x.aborting = true
		x.resume <- struct{}{}
		if x.waitUnwind() {
			x.finished = true
		}
	}
}

// handBack, on the orchestrator goroutine, hands control back to the caller of Run or abort. It
// reports false when the caller gave up on this goroutine (a yield or unwind timeout): then
// nobody takes the hand-back, and the goroutine must not block on it.
func (x *Execution) handBack() bool {
	select {
	case x.yield <- struct{}{}:
		return true
	case <-x.abandoned:
		return false
	}
}

// Close releases the execution: a parked orchestrator goroutine is unwound. It returns a
// *DeadlockError (Unwinding set) if the orchestrator's deferred calls did not return within the
// yield timeout, now or when a terminate unwound it: its goroutine is then abandoned, as after
// a yield timeout, so that no caller waits on orchestrator code for ever.
func (x *Execution) Close() error {
	x.abort()
	if x.unwindErr != nil {
		return x.unwindErr
	}
	return nil
}

// FailureFromError converts an orchestrator's or activity's error into failure details. Errors that
// describe themselves (see Describer) keep their type and details; others are named by Go type.
func FailureFromError(err error) *history.Failure {
	if err == nil {
		return nil
	}
	if d, ok := err.(Describer); ok {
		return d.Failure()
	}
	if fe, ok := err.(*FailedError); ok && fe.Failure != nil {
		return &history.Failure{Type: "TaskFailed", Message: fe.Error(), Inner: fe.Failure}
	}
	return &history.Failure{Type: history.ErrorType(err), Message: err.Error()}
}

// Describer is implemented by errors that carry their own failure details.
type Describer interface {
	Failure() *history.Failure
}

// Context is the orchestration context: the orchestrator's only door to the outside world.
type Context struct {
	x *Execution

	instanceID string
	name       string
	version    string // the execution's, from its ExecutionStarted
	input      []byte
	parent     *history.Parent
	now        time.Time
	replaying  bool

	seq      int32
	open     map[int32]*Task         // scheduled tasks awaiting completion, by sequence number
	pending  map[int32]history.Event // scheduled in this run, not yet matched with history
	failInfo map[int32]string        // names of scheduled tasks, for failure messages
	waiters  map[string][]*Task      // external event waits, FIFO per lower-cased name
	buffered map[string][]history.Event
	subs     map[int32]string // open sub-orchestrations: task ID → instance ID

	entities entities // calls, lock requests and the critical section (entity.go)

	customStatus []byte
	uuids        int
	can          *canRequest

	patches map[string]bool // IsPatched's answers, by name: the first answer holds for the execution
	marked  map[string]bool // the names of the PatchApplied events in the history replayed
	markers []history.Event // PatchApplied events recorded in this episode, not yet collected
}

type canRequest struct {
	input []byte
	keep  bool
}

// InstanceID returns the instance ID.
func (c *Context) InstanceID() string { return c.instanceID }

// Name returns the orchestrator's name.
func (c *Context) Name() string { return c.name }

// ParentInstanceID returns the parent's instance ID for a sub-orchestration, else "".
func (c *Context) ParentInstanceID() string {
	if c.parent == nil {
		return ""
	}
	return c.parent.InstanceID
}

// Input returns the orchestration's JSON input.
func (c *Context) Input() []byte { return c.input }

// Version returns the orchestration version the execution was started with, "" for none.
func (c *Context) Version() string { return c.version }

// Now returns the replay-safe current time: the start time of the current episode.
func (c *Context) Now() time.Time { return c.now }

// IsReplaying reports whether the orchestrator is re-running code already run before.
func (c *Context) IsReplaying() bool { return c.replaying }

// NewUUID returns a deterministic, replay-safe version-5 UUID.
func (c *Context) NewUUID() string {
	c.uuids++
	name := fmt.Sprintf("%s_%s_%d", c.instanceID, c.now.UTC().Format(time.RFC3339Nano), c.uuids)
	h := sha1.New()
	h.Write(uuidNamespace[:])
	h.Write([]byte(name))
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = (u[6] & 0x0f) | 0x50
	u[8] = (u[8] & 0x3f) | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// uuidNamespace is Reprise's own UUID namespace for NewUUID.
var uuidNamespace = [16]byte{0x5b, 0x1c, 0x6e, 0x2a, 0x9d, 0x43, 0x4f, 0x0e, 0xa7, 0x51, 0x3c, 0x88, 0x12, 0xe4, 0x6d, 0x07}

// SetCustomStatus sets the JSON custom status shown in the instance's status.
func (c *Context) SetCustomStatus(v []byte) { c.customStatus = v }

// ContinueAsNew asks to restart the orchestration with a new input once the orchestrator returns.
// With keepEvents, external events received and not yet consumed are delivered to the new execution.
func (c *Context) ContinueAsNew(input []byte, keepEvents bool) {
	c.can = &canRequest{input: input, keep: keepEvents}
}

func (c *Context) schedule(e history.Event) int32 {
	e.ID = c.seq
	c.seq++
	e.Time = c.now
	c.pending[e.ID] = e
	return e.ID
}

func (c *Context) newTask() *Task { return &Task{x: c.x} }

// CallActivity schedules an activity. With a retry policy, failed attempts are retried after
// durable timers. The call is scheduled with version, or the orchestration's version when it is
// "" (what the activity's worker is told: see ActivityRequest.version of the Durable Task
// protocol).
func (c *Context) CallActivity(name, version string, input []byte, retry *RetryPolicy) *Task {
	if version == "" {
		version = c.version
	}
	if retry != nil {
		return c.withRetry(retry, func(attempt int) *Task { return c.callActivity(name, version, input, attempt) })
	}
	return c.callActivity(name, version, input, 1)
}

func (c *Context) callActivity(name, version string, input []byte, attempt int) *Task {
	id := c.schedule(history.Event{Type: history.TaskScheduled, Name: name, Version: version, Input: input, Attempt: attempt})
	return c.track(id, name)
}

func (c *Context) track(id int32, name string) *Task {
	t := c.newTask()
	c.open[id] = t
	if c.failInfo == nil {
		c.failInfo = map[int32]string{}
	}
	c.failInfo[id] = name
	return t
}

// CallSubOrchestrator starts a sub-orchestration and returns a task for its output. An empty
// instanceID derives one from the parent's ID and the sequence number. The child is started with
// version, or with the parent's version when it is "": the version is recorded in the history,
// so the child gets the same one on every replay and whichever host ran the call. In a critical
// section the task fails at once (ErrCriticalSection): a section cannot start sub-orchestrations.
func (c *Context) CallSubOrchestrator(name, instanceID, version string, input []byte, retry *RetryPolicy) *Task {
	if version == "" {
		version = c.version
	}
	if s := c.entities.section; s != nil {
		return c.Failed(fmt.Errorf("%w: call sub-orchestrator %q: a critical section (of %v) cannot start sub-orchestrations; release it first",
			ErrCriticalSection, name, s.entities))
	}
	call := func(int) *Task {
		id := instanceID
		if id == "" {
			id = fmt.Sprintf("%s:%d", c.instanceID, c.seq)
		}
		seq := c.schedule(history.Event{Type: history.SubOrchestrationInstanceCreated, Name: name, InstanceID: id, Version: version, Input: input})
		c.subs[seq] = id
		return c.track(seq, name)
	}
	if retry != nil {
		return c.withRetry(retry, call)
	}
	return call(1)
}

// CreateTimer schedules a durable timer that fires at fireAt.
func (c *Context) CreateTimer(fireAt time.Time) *Task { return c.createTimer(fireAt, "", "") }

// createTimer schedules a timer; retry or timeoutOf say what it is for (shown by the dashboard,
// not compared on replay).
func (c *Context) createTimer(fireAt time.Time, retry, timeoutOf string) *Task {
	id := c.schedule(history.Event{Type: history.TimerCreated, FireAt: fireAt.UTC(), Retry: retry, TimeoutOf: timeoutOf})
	t := c.newTask()
	c.open[id] = t
	t.then(func(t *Task) {
		if t.canceled {
			delete(c.open, id)
		}
	})
	return t
}

// WaitForEvent returns a task completed by the next external event with the name (names are
// case-insensitive). Events raised before the wait are kept and delivered in order. With a
// positive timeout, the task fails with ErrTimeout when a durable timer fires first.
func (c *Context) WaitForEvent(name string, timeout time.Duration) *Task {
	key := strings.ToLower(name)
	t := c.newTask()
	if buf := c.buffered[key]; len(buf) > 0 {
		c.buffered[key] = buf[1:]
		if len(c.buffered[key]) == 0 {
			delete(c.buffered, key)
		}
		t.complete(buf[0].Input, nil)
		return t
	}
	c.waiters[key] = append(c.waiters[key], t)
	if timeout > 0 {
		// The timer names its event: nothing else in the history ties it to the wait.
		timer := c.createTimer(c.now.Add(timeout), "", name)
		timer.then(func(timer *Task) {
			if timer.canceled || t.done {
				return
			}
			// Withdraw the wait so that a later event is kept for the next wait.
			ws := c.waiters[key]
			for i, w := range ws {
				if w == t {
					c.waiters[key] = append(ws[:i:i], ws[i+1:]...)
					break
				}
			}
			t.complete(nil, ErrTimeout)
		})
		t.then(func(*Task) { timer.Cancel() })
	}
	return t
}

// SendEvent raises an external event on another instance (fire and forget).
func (c *Context) SendEvent(instanceID, name string, data []byte) {
	c.schedule(history.Event{Type: history.EventSent, InstanceID: instanceID, Name: name, Input: data})
}

// All returns a task that completes when every task has completed; its error is the first error
// among the tasks, in argument order.
func (c *Context) All(tasks ...*Task) *Task {
	all := c.newTask()
	left := len(tasks)
	check := func(*Task) {
		left--
		if left > 0 {
			return
		}
		for _, t := range tasks {
			if t.err != nil {
				all.complete(nil, t.err)
				return
			}
		}
		all.complete(nil, nil)
	}
	if left == 0 {
		all.complete(nil, nil)
	}
	for _, t := range tasks {
		t.then(check)
	}
	return all
}

// Any returns a task that completes when the first of the tasks completes; Winner tells which.
func (c *Context) Any(tasks ...*Task) *AnyTask {
	a := &AnyTask{Task: c.newTask(), winner: -1}
	for i, t := range tasks {
		t.then(func(t *Task) {
			if !a.done {
				a.winner = i
				a.complete(t.result, t.err)
			}
		})
	}
	return a
}

// AnyTask is the task of Any.
type AnyTask struct {
	*Task
	winner int
}

// Winner returns the index of the first completed task, or -1 before completion.
func (a *AnyTask) Winner() int { return a.winner }

func (c *Context) withRetry(p *RetryPolicy, call func(attempt int) *Task) *Task {
	result := c.newTask()
	first := c.now
	attempt := 1
	var run func(t *Task)
	run = func(t *Task) {
		t.then(func(t *Task) {
			if t.err == nil || !c.shouldRetry(p, attempt, first, t.err) {
				result.complete(t.result, t.err)
				return
			}
			delay := retryDelay(p, attempt)
			attempt++
			timer := c.createTimer(c.now.Add(delay), fmt.Sprintf("Retry Attempt %d", attempt), "")
			timer.then(func(*Task) { run(call(attempt)) })
		})
	}
	run(call(attempt))
	return result
}

func (c *Context) shouldRetry(p *RetryPolicy, attempt int, first time.Time, err error) bool {
	if p.MaxAttempts > 0 && attempt >= p.MaxAttempts {
		return false
	}
	if fe, ok := err.(*FailedError); ok && fe.Failure != nil && fe.Failure.NonRetriable {
		return false
	}
	if p.Timeout > 0 && !c.now.Before(first.Add(p.Timeout)) {
		return false
	}
	if p.Handle != nil && !p.Handle(err) {
		return false
	}
	return true
}

// retryDelay is FirstInterval × Backoff^(attempt-1), capped at MaxInterval.
func retryDelay(p *RetryPolicy, attempt int) time.Duration {
	b := p.Backoff
	if b <= 0 {
		b = 1
	}
	d := float64(p.FirstInterval) * math.Pow(b, float64(attempt-1))
	if p.MaxInterval > 0 && d > float64(p.MaxInterval) {
		d = float64(p.MaxInterval)
	}
	if d > float64(math.MaxInt64) {
		d = float64(math.MaxInt64)
	}
	return time.Duration(d)
}

// Parent returns the parent of a sub-orchestration, else nil.
func (c *Context) Parent() *history.Parent { return c.parent }

// Failed returns a task that has already failed with err (a call that could not be scheduled).
func (c *Context) Failed(err error) *Task {
	t := c.newTask()
	t.complete(nil, err)
	return t
}

// Started reports whether an ExecutionStarted event has started the orchestrator.
func (x *Execution) Started() bool { return x.started }

package replay

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/reprise-dev/reprise/internal/history"
	"github.com/reprise-dev/reprise/store"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// Event builders: the history the engine writes, in its shapes.
func started(ms int) history.Event {
	return history.New(history.OrchestratorStarted, t0.Add(time.Duration(ms)*time.Millisecond))
}

func execStarted(input string) history.Event {
	e := history.New(history.ExecutionStarted, t0)
	e.Name, e.InstanceID, e.ExecutionID, e.Input = "orch", "inst", "exec", json.RawMessage(input)
	return e
}

func scheduled(id int32, name string) history.Event {
	e := history.New(history.TaskScheduled, t0)
	e.ID, e.Name = id, name
	return e
}

func timerCreated(id int32) history.Event {
	e := history.New(history.TimerCreated, t0)
	e.ID = id
	return e
}

func completed(id int32, result string) history.Event {
	e := history.New(history.TaskCompleted, t0)
	e.TaskID, e.Result = id, json.RawMessage(result)
	return e
}

func failed(id int32, msg string) history.Event {
	e := history.New(history.TaskFailed, t0)
	e.TaskID, e.Failure = id, &history.Failure{Type: "E", Message: msg}
	return e
}

func fired(id int32) history.Event {
	e := history.New(history.TimerFired, t0)
	e.TaskID = id
	return e
}

func raised(name, data string) history.Event {
	e := history.New(history.EventRaised, t0)
	e.Name, e.Input = name, json.RawMessage(data)
	return e
}

func control(typ history.Type, input string) history.Event {
	e := history.New(typ, t0)
	if input != "" {
		e.Input = json.RawMessage(input)
	}
	return e
}

func finished(status store.Status) history.Event {
	e := history.New(history.ExecutionCompleted, t0)
	e.Status = int(status)
	return e
}

func rewound(voided ...int32) history.Event {
	e := history.New(history.ExecutionRewound, t0)
	e.Voided = voided
	return e
}

func subCreated(id int32) history.Event {
	e := history.New(history.SubOrchestrationInstanceCreated, t0)
	e.ID, e.Name, e.InstanceID = id, "child", "inst:0"
	return e
}

func subCompleted(id int32, result string) history.Event {
	e := history.New(history.SubOrchestrationInstanceCompleted, t0)
	e.TaskID, e.Result = id, json.RawMessage(result)
	return e
}

func subFailed(id int32) history.Event {
	e := history.New(history.SubOrchestrationInstanceFailed, t0)
	e.TaskID, e.Failure = id, &history.Failure{Message: "child failed"}
	return e
}

func callsChild(c *Context) ([]byte, error) {
	return c.CallSubOrchestrator("child", "", "", nil, nil).Await()
}

// Orchestrators of the table.
func sequence(c *Context) ([]byte, error) {
	a, err := c.CallActivity("a", "", nil, nil).Await()
	if err != nil {
		return nil, err
	}
	return c.CallActivity("b", "", a, nil).Await()
}

func waitsForEvent(c *Context) ([]byte, error) {
	return c.WaitForEvent("Approve", 0).Await()
}

func sleeps(c *Context) ([]byte, error) {
	if _, err := c.CreateTimer(c.Now().Add(time.Hour)).Await(); err != nil {
		return nil, err
	}
	return []byte(`"woke"`), nil
}

func returnsAtOnce(*Context) ([]byte, error) { return []byte(`"done"`), nil }

func panicsLive(c *Context) ([]byte, error) {
	if !c.IsReplaying() {
		panic("boom")
	}
	return nil, nil
}

func panicsAfterA(c *Context) ([]byte, error) {
	if _, err := c.CallActivity("a", "", nil, nil).Await(); err != nil {
		return nil, err
	}
	var none []int
	_ = none[len(c.Name())] // index out of range
	return nil, nil
}

func retriesA(c *Context) ([]byte, error) {
	return c.CallActivity("a", "", nil, &RetryPolicy{FirstInterval: time.Second, MaxAttempts: 3}).Await()
}

func continuesAsNew(c *Context) ([]byte, error) {
	c.ContinueAsNew([]byte(`2`), true)
	return nil, nil
}

// describeAll shows actions as describe does, plus a timer's retry label.
func describeAll(events []history.Event) string {
	var out []string
	for _, e := range events {
		s := describe(e)
		if e.Retry != "" {
			s += " " + e.Retry
		}
		out = append(out, s)
	}
	return strings.Join(out, ", ")
}

func TestRun(t *testing.T) {
	type want struct {
		status  store.Status
		actions string // describeAll of the result's actions
		output  string
		failure string // Failure.Text() of a failed result, substring
		err     string // substring of Run's error; "" for none
		nondet  bool   // the error is a *NonDeterminismError
		panics  bool   // the error is a *PanicError
	}
	cases := []struct {
		name     string
		fn       Func
		old, new []history.Event
		want     want
	}{
		{
			name: "a new execution schedules its first activity",
			fn:   sequence,
			new:  []history.Event{started(0), execStarted(`null`)},
			want: want{status: store.StatusRunning, actions: `CallActivity #0 "a"`},
		},
		{
			name: "a completion continues the orchestrator",
			fn:   sequence,
			old:  []history.Event{started(0), execStarted(`null`), scheduled(0, "a")},
			new:  []history.Event{started(1), completed(0, `"x"`)},
			want: want{status: store.StatusRunning, actions: `CallActivity #1 "b"`},
		},
		{
			name: "the last completion completes it",
			fn:   sequence,
			old:  []history.Event{started(0), execStarted(`null`), scheduled(0, "a"), started(1), completed(0, `"x"`), scheduled(1, "b")},
			new:  []history.Event{started(2), completed(1, `"y"`)},
			want: want{status: store.StatusCompleted, output: `"y"`},
		},
		{
			name: "a failed activity fails it, the task's failure inside",
			fn:   sequence,
			old:  []history.Event{started(0), execStarted(`null`), scheduled(0, "a")},
			new:  []history.Event{started(1), failed(0, "disk full")},
			want: want{status: store.StatusFailed, failure: `TaskFailed: activity "a" (task 0) failed: E: disk full`},
		},
		{
			name: "a stale completion is ignored",
			fn:   sequence,
			old:  []history.Event{started(0), execStarted(`null`), scheduled(0, "a")},
			new:  []history.Event{started(1), completed(9, `1`)},
			want: want{status: store.StatusRunning},
		},
		{
			name: "nothing started: pending",
			fn:   sequence,
			new:  []history.Event{started(0)},
			want: want{status: store.StatusPending},
		},
		{
			name: "an event raised before the wait is kept for it",
			fn:   waitsForEvent,
			new:  []history.Event{started(0), raised("approve", `"ok"`), execStarted(`null`)},
			want: want{status: store.StatusCompleted, output: `"ok"`},
		},
		{
			name: "a timer is scheduled, and its firing wakes the orchestrator",
			fn:   sleeps,
			old:  []history.Event{started(0), execStarted(`null`), timerCreated(0)},
			new:  []history.Event{started(1), fired(0)},
			want: want{status: store.StatusCompleted, output: `"woke"`},
		},
		{
			name: "a failed attempt under a retry policy schedules a retry timer",
			fn:   retriesA,
			old:  []history.Event{started(0), execStarted(`null`), scheduled(0, "a")},
			new:  []history.Event{started(1), failed(0, "flaky")},
			want: want{status: store.StatusRunning, actions: `CreateTimer #1 Retry Attempt 2`},
		},
		{
			name: "suspended: a completion waits for resume",
			fn:   sequence,
			old:  []history.Event{started(0), execStarted(`null`), scheduled(0, "a")},
			new:  []history.Event{started(1), control(history.ExecutionSuspended, ""), completed(0, `"x"`)},
			want: want{status: store.StatusSuspended},
		},
		{
			name: "resumed: the held completion is applied",
			fn:   sequence,
			old:  []history.Event{started(0), execStarted(`null`), scheduled(0, "a"), started(1), control(history.ExecutionSuspended, ""), completed(0, `"x"`)},
			new:  []history.Event{started(2), control(history.ExecutionResumed, "")},
			want: want{status: store.StatusRunning, actions: `CallActivity #1 "b"`},
		},
		{
			name: "terminated",
			fn:   waitsForEvent,
			old:  []history.Event{started(0), execStarted(`null`)},
			new:  []history.Event{started(1), control(history.ExecutionTerminated, `"enough"`)},
			want: want{status: store.StatusTerminated, output: `"enough"`},
		},
		{
			name: "continue-as-new",
			fn:   continuesAsNew,
			new:  []history.Event{started(0), execStarted(`1`)},
			want: want{status: store.StatusContinuedAsNew},
		},
		{
			name: "a rewind voids the failure; the re-run's scheduling copy is skipped",
			fn:   sequence,
			old: []history.Event{started(0), execStarted(`null`), scheduled(0, "a"), started(1), failed(0, "down"),
				finished(store.StatusFailed), started(2), rewound(0), scheduled(0, "a")},
			new:  []history.Event{started(3), completed(0, `"x"`)},
			want: want{status: store.StatusRunning, actions: `CallActivity #1 "b"`},
		},
		{
			name: "a rewound sub-orchestration: its re-run's creation copy is skipped too",
			fn:   callsChild,
			old: []history.Event{started(0), execStarted(`null`), subCreated(0), started(1), subFailed(0),
				finished(store.StatusFailed), started(2), rewound(0), subCreated(0)},
			new:  []history.Event{started(3), subCompleted(0, `"child ok"`)},
			want: want{status: store.StatusCompleted, output: `"child ok"`},
		},

		// Histories that the code no longer matches.
		{
			name: "another activity than history has",
			fn:   sequence,
			old:  []history.Event{started(0), execStarted(`null`), scheduled(0, "other")},
			want: want{nondet: true, err: `history has CallActivity #0 "other", but the code scheduled CallActivity #0 "a"`},
		},
		{
			name: "a timer where history has an activity",
			fn:   sleeps,
			old:  []history.Event{started(0), execStarted(`null`), scheduled(0, "a")},
			want: want{nondet: true, err: `history has CallActivity #0 "a", but the code scheduled CreateTimer #0`},
		},
		{
			name: "the code schedules nothing where history has a call",
			fn:   returnsAtOnce,
			old:  []history.Event{started(0), execStarted(`null`), scheduled(0, "a")},
			want: want{nondet: true, err: `history has CallActivity #0 "a", but the code did not schedule it`},
		},
		{
			name: "the code schedules past the end of history",
			fn:   sequence,
			old:  []history.Event{started(0), execStarted(`null`), scheduled(0, "a"), started(1), completed(0, `"x"`)},
			new:  []history.Event{started(2)},
			want: want{nondet: true, err: `history has no further scheduled task, but the code scheduled CallActivity #1 "b"`},
		},
		{
			name: "history says finished, the code still waits",
			fn:   sequence,
			old:  []history.Event{started(0), execStarted(`null`), scheduled(0, "a"), finished(store.StatusCompleted)},
			want: want{nondet: true, err: `history has the orchestration finished (Completed), but the code is still waiting on a task`},
		},

		// Panics.
		{
			name: "a panic in new work fails the orchestration, with the stack",
			fn:   panicsLive,
			new:  []history.Event{started(0), execStarted(`null`)},
			want: want{status: store.StatusFailed, failure: "panic: orchestrator panicked: boom"},
		},
		{
			name: "a panic while replaying is a panic, not non-determinism",
			fn:   panicsAfterA,
			old:  []history.Event{started(0), execStarted(`null`), scheduled(0, "a"), started(1), completed(0, `1`), scheduled(1, "b")},
			new:  []history.Event{started(2), completed(1, `2`)},
			want: want{panics: true, err: "orchestrator panicked: runtime error: index out of range"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			x := New(tc.fn)
			defer x.Close()
			res, err := x.Run(tc.old, tc.new)
			var nd *NonDeterminismError
			var pe *PanicError
			if got := errors.As(err, &nd); got != tc.want.nondet {
				t.Fatalf("error %v: non-determinism %v, want %v", err, got, tc.want.nondet)
			}
			if got := errors.As(err, &pe); got != tc.want.panics {
				t.Fatalf("error %v: panic %v, want %v", err, got, tc.want.panics)
			}
			if tc.want.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.want.err)
				}
				if pe != nil && !strings.Contains(pe.Failure.StackTrace, "panicsAfterA") {
					t.Errorf("panic stack does not name the orchestrator:\n%s", pe.Failure.StackTrace)
				}
				if nd != nil && !errors.Is(err, ErrNonDeterminism) {
					t.Errorf("%v does not wrap ErrNonDeterminism", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if res.Status != tc.want.status || res.Done != tc.want.status.Terminal() && tc.want.status != store.StatusContinuedAsNew {
				t.Errorf("status %s (done %v), want %s", res.Status, res.Done, tc.want.status)
			}
			if got := describeAll(res.Actions); got != tc.want.actions {
				t.Errorf("actions %q, want %q", got, tc.want.actions)
			}
			if string(res.Output) != tc.want.output {
				t.Errorf("output %s, want %s", res.Output, tc.want.output)
			}
			if tc.want.failure != "" {
				if got := res.Failure.Text(); !strings.Contains(got, tc.want.failure) {
					t.Errorf("failure %q, want it to contain %q", got, tc.want.failure)
				}
				if res.Failure.Type == "panic" && res.Failure.StackTrace == "" {
					t.Error("a panic's failure has no stack")
				}
			} else if res.Failure != nil {
				t.Errorf("unexpected failure %+v", res.Failure)
			}
		})
	}
}

// An execution kept between episodes applies only the new events, and ends the same as one that
// replays everything.
func TestRunContinuesACachedExecution(t *testing.T) {
	x := New(sequence)
	defer x.Close()
	res, err := x.Run(nil, []history.Event{started(0), execStarted(`null`)})
	if err != nil || describeAll(res.Actions) != `CallActivity #0 "a"` {
		t.Fatalf("first episode: %+v, %v", res, err)
	}
	res, err = x.Run(nil, []history.Event{started(1), completed(0, `"x"`)})
	if err != nil || describeAll(res.Actions) != `CallActivity #1 "b"` {
		t.Fatalf("second episode: %+v, %v", res, err)
	}
	res, err = x.Run(nil, []history.Event{started(2), completed(1, `"y"`)})
	if err != nil || !res.Done || string(res.Output) != `"y"` {
		t.Fatalf("third episode: %+v, %v", res, err)
	}
}

// Continue-as-new with keepEvents carries the events not yet consumed to the new execution.
func TestContinueAsNewCarriesEvents(t *testing.T) {
	x := New(continuesAsNew)
	defer x.Close()
	res, err := x.Run(nil, []history.Event{started(0), execStarted(`1`), raised("later", `3`)})
	if err != nil {
		t.Fatal(err)
	}
	if res.ContinueAsNew == nil || string(res.ContinueAsNew.Input) != `2` || len(res.ContinueAsNew.Carried) != 1 ||
		res.ContinueAsNew.Carried[0].Name != "later" {
		t.Fatalf("continue-as-new %+v", res.ContinueAsNew)
	}
}

func TestFailureFromError(t *testing.T) {
	inner := &history.Failure{Type: "E", Message: "down"}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{errors.New("plain"), "plain"}, // plain errors carry no Go type name
		{fmt.Errorf("wrapped: %w", errors.New("x")), "wrapped: x"},
		{&FailedError{Kind: "activity", Name: "a", TaskID: 3, Failure: inner}, `TaskFailed: activity "a" (task 3) failed: E: down`},
	} {
		if got := FailureFromError(tc.err).Text(); got != tc.want {
			t.Errorf("FailureFromError(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
	if FailureFromError(nil) != nil {
		t.Error("FailureFromError(nil) is not nil")
	}
}

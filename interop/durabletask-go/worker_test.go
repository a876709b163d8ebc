package durabletaskgo

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/microsoft/durabletask-go/api"
	"github.com/microsoft/durabletask-go/task"
	"google.golang.org/grpc/codes"
)

// The worker tests run orchestrators and activities in durabletask-go v0.6.0's worker,
// client.StartWorkItemListener, against the server: GetWorkItems, CompleteOrchestratorTask and
// CompleteActivityTask, through the SDK's orchestration runtime (package task).
//
// v0.6.0 sends no versions: api has no option for CreateInstanceRequest.version, and its
// ScheduleTask and CreateSubOrchestration actions leave theirs unset. Nor does it send completion
// tokens: its OrchestratorResponse and ActivityResponse name the work item by instance ID (and
// task ID), so the server must take those when the token is empty.

// The hello sequence: the orchestrator HelloSequence calls the activity SayHello for each city,
// in order, and returns the greetings.
const helloOutput = `["Hello, Tokyo!","Hello, Seattle!","Hello, London!"]`

func helloSequence(ctx *task.OrchestrationContext) (any, error) {
	var greetings []string
	for _, city := range []string{"Tokyo", "Seattle", "London"} {
		var greeting string
		if err := ctx.CallActivity("SayHello", task.WithActivityInput(city)).Await(&greeting); err != nil {
			return nil, err
		}
		greetings = append(greetings, greeting)
	}
	return greetings, nil
}

func sayHello(ctx task.ActivityContext) (any, error) {
	var city string
	err := ctx.GetInput(&city)
	return "Hello, " + city + "!", err
}

func helloRegistry(t *testing.T) *task.TaskRegistry {
	return registry(t, map[string]task.Orchestrator{"HelloSequence": helloSequence}, map[string]task.Activity{"SayHello": sayHello})
}

func TestWorkerSequence(t *testing.T) {
	h := newHub(t)
	h.listen("A", helloRegistry(t))
	h.schedule("HelloSequence", "sequence")
	m := h.expect("sequence", api.RUNTIME_STATUS_COMPLETED, helloOutput)
	if m.Name != "HelloSequence" {
		t.Errorf("name %q, want %s", m.Name, "HelloSequence")
	}
}

func TestWorkerFanOutFanIn(t *testing.T) {
	h := newHub(t)
	h.listen("A", registry(t,
		map[string]task.Orchestrator{"FanOut": func(ctx *task.OrchestrationContext) (any, error) {
			var n int
			if err := ctx.GetInput(&n); err != nil {
				return nil, err
			}
			calls := make([]task.Task, n)
			for i := range calls {
				calls[i] = ctx.CallActivity("Square", task.WithActivityInput(i))
			}
			squares := make([]int, n)
			for i, call := range calls {
				if err := call.Await(&squares[i]); err != nil {
					return nil, err
				}
			}
			return squares, nil
		}},
		map[string]task.Activity{"Square": func(ctx task.ActivityContext) (any, error) {
			var i int
			err := ctx.GetInput(&i)
			return i * i, err
		}}))
	h.schedule("FanOut", "fan-out", api.WithInput(10))
	h.expect("fan-out", api.RUNTIME_STATUS_COMPLETED, `[0,1,4,9,16,25,36,49,64,81]`)
}

func TestWorkerSubOrchestrations(t *testing.T) {
	h := newHub(t)
	r := helloRegistry(t)
	for name, o := range map[string]task.Orchestrator{
		"Parent": func(ctx *task.OrchestrationContext) (any, error) {
			var named, generated []string
			if err := ctx.CallSubOrchestrator("HelloSequence", task.WithSubOrchestrationInstanceID(string(ctx.ID)+"-child")).Await(&named); err != nil {
				return nil, err
			}
			if err := ctx.CallSubOrchestrator("HelloSequence").Await(&generated); err != nil {
				return nil, err
			}
			err := ctx.CallSubOrchestrator("Refuses", task.WithSubOrchestrationInstanceID(string(ctx.ID)+"-refuses"), task.WithSubOrchestratorInput("no")).Await(nil)
			if err == nil {
				return nil, errors.New("the child Refuses succeeded")
			}
			return map[string]any{"named": named, "generated": generated, "refused": err.Error()}, nil
		},
		"Refuses": func(ctx *task.OrchestrationContext) (any, error) {
			var word string
			if err := ctx.GetInput(&word); err != nil {
				return nil, err
			}
			return nil, errors.New("the child says " + word)
		},
	} {
		if err := r.AddOrchestratorN(name, o); err != nil {
			t.Fatal(err)
		}
	}
	h.listen("A", r)
	h.schedule("Parent", "parent")
	h.expect("parent", api.RUNTIME_STATUS_COMPLETED, `{"generated":`+helloOutput+`,"named":`+helloOutput+`,"refused":"task failed with an error: the child says no"}`)
	h.expect("parent-child", api.RUNTIME_STATUS_COMPLETED, helloOutput)
	if m := h.failed("parent-refuses", "the child says no"); m.SerializedInput != `"no"` {
		t.Errorf("the failed child's input is %s, want \"no\"", m.SerializedInput)
	}
}

// TestWorkerTimers checks that a durable timer fires, and not before its time as the
// orchestration sees it (the OrchestratorStarted time of the turn that runs it), and that an
// event wait with a timeout ends with the timeout when no event comes.
func TestWorkerTimers(t *testing.T) {
	const delay = time.Second
	h := newHub(t)
	h.listen("A", registry(t, map[string]task.Orchestrator{"Timer": func(ctx *task.OrchestrationContext) (any, error) {
		before := ctx.CurrentTimeUtc
		if err := ctx.CreateTimer(delay).Await(nil); err != nil {
			return nil, err
		}
		waited := ctx.CurrentTimeUtc.Sub(before)
		err := ctx.WaitForSingleEvent("never", 200*time.Millisecond).Await(nil)
		return map[string]any{"waitedEnough": waited >= delay, "waited": waited.String(), "eventTimedOut": errors.Is(err, task.ErrTaskCanceled)}, nil
	}}, nil))
	h.schedule("Timer", "timer")
	m := h.finished("timer")
	if m.RuntimeStatus != api.RUNTIME_STATUS_COMPLETED || !strings.Contains(m.SerializedOutput, `"waitedEnough":true`) || !strings.Contains(m.SerializedOutput, `"eventTimedOut":true`) {
		t.Errorf("instance timer finished %v with output %s; want COMPLETED, a timer that fired no earlier than %v after it was made, and an event wait that timed out", m.RuntimeStatus, m.SerializedOutput, delay)
	}
}

func TestWorkerExternalEvents(t *testing.T) {
	h := newHub(t)
	h.listen("A", registry(t, map[string]task.Orchestrator{
		"Approval": func(ctx *task.OrchestrationContext) (any, error) {
			var by map[string]string
			err := ctx.WaitForSingleEvent("approval", -1).Await(&by)
			return by, err
		},
		"TwoItems": func(ctx *task.OrchestrationContext) (any, error) {
			items := make([]string, 2)
			for i := range items {
				if err := ctx.WaitForSingleEvent("item", -1).Await(&items[i]); err != nil {
					return nil, err
				}
			}
			return items, nil
		},
	}, nil))

	// Raised while the orchestrator waits: its first turn has ended once the instance runs.
	h.schedule("Approval", "approval")
	if _, err := h.c.WaitForOrchestrationStart(h.ctx, "approval"); err != nil {
		t.Fatalf("WaitForOrchestrationStart: %v", err)
	}
	if err := h.c.RaiseEvent(h.ctx, "approval", "approval", api.WithEventPayload(map[string]string{"by": "ana"})); err != nil {
		t.Fatalf("RaiseEvent: %v", err)
	}
	h.expect("approval", api.RUNTIME_STATUS_COMPLETED, `{"by":"ana"}`)

	// Raised at once, maybe before the first turn: both wait in order, whatever the case of the
	// name (the SDK matches names case-insensitively, so the server must pass them as sent).
	h.schedule("TwoItems", "two-items")
	for _, e := range []struct{ name, data string }{{"item", "first"}, {"ITEM", "second"}} {
		if err := h.c.RaiseEvent(h.ctx, "two-items", e.name, api.WithEventPayload(e.data)); err != nil {
			t.Fatalf("RaiseEvent %s: %v", e.name, err)
		}
	}
	h.expect("two-items", api.RUNTIME_STATUS_COMPLETED, `["first","second"]`)
}

// TestWorkerContinueAsNew runs an orchestrator that takes one event "tick" per execution and
// continues as new, keeping the events it has not taken yet (the SDK sends them as the
// continue-as-new's carryoverEvents), until it has three: they must come in the order raised.
func TestWorkerContinueAsNew(t *testing.T) {
	type state struct {
		Executions int
		Ticks      []string
	}
	// held, when set, makes the first execution wait for the activity "Hold" first, and block the
	// turn that continues as new (the first to run live after Hold) until the test raises t3.
	type held struct {
		once          sync.Once
		turn, raised  chan struct{}
		entered, hold chan struct{}
	}
	ticks := func(hd *held) task.Orchestrator {
		return func(ctx *task.OrchestrationContext) (any, error) {
			var s state
			if err := ctx.GetInput(&s); err != nil {
				return nil, err
			}
			s.Executions++
			if hd != nil && s.Executions == 1 {
				if err := ctx.CallActivity("Hold").Await(nil); err != nil {
					return nil, err
				}
			}
			var tick string
			if err := ctx.WaitForSingleEvent("tick", -1).Await(&tick); err != nil {
				return nil, err
			}
			s.Ticks = append(s.Ticks, tick)
			if len(s.Ticks) < 3 {
				if hd != nil && s.Executions == 1 && !ctx.IsReplaying {
					hd.once.Do(func() { close(hd.turn) })
					<-hd.raised
				}
				ctx.ContinueAsNew(s, task.WithKeepUnprocessedEvents())
				return nil, nil
			}
			return s, nil
		}
	}
	hd := &held{turn: make(chan struct{}), raised: make(chan struct{}), entered: make(chan struct{}), hold: make(chan struct{})}
	h := newHub(t)
	h.listen("A", registry(t,
		map[string]task.Orchestrator{"Ticks": ticks(nil), "HeldTicks": ticks(hd)},
		map[string]task.Activity{"Hold": func(task.ActivityContext) (any, error) {
			close(hd.entered)
			<-hd.hold
			return nil, nil
		}}))
	raise := func(h *hub, id api.InstanceID, ticks ...string) {
		h.t.Helper()
		for _, tick := range ticks {
			if err := h.c.RaiseEvent(h.ctx, id, "tick", api.WithEventPayload(tick)); err != nil {
				h.t.Fatalf("RaiseEvent %s to %s: %v", tick, id, err)
			}
		}
	}
	const want, wantInput = `{"Executions":3,"Ticks":["t1","t2","t3"]}`, `{"Executions":2,"Ticks":["t1","t2"]}`

	t.Run("raised at once", func(t *testing.T) {
		h := h.in(t)
		h.schedule("Ticks", "ticks", api.WithInput(state{}))
		raise(h, "ticks", "t1", "t2", "t3")
		if m := h.expect("ticks", api.RUNTIME_STATUS_COMPLETED, want); m.SerializedInput != wantInput {
			t.Errorf("input %s, want the last execution's, %s", m.SerializedInput, wantInput)
		}
	})

	// t1 and t2 wait in the history when the turn that continues as new runs: it takes t1 and
	// carries t2 over. t3 comes while that turn runs, so it reaches the next execution later
	// than t2, but not as a carried event.
	t.Run("raised while the turn that continues runs", func(t *testing.T) {
		h := h.in(t)
		h.schedule("HeldTicks", "held", api.WithInput(state{}))
		h.await(hd.entered, "the activity Hold", "held")
		raise(h, "held", "t1", "t2")
		close(hd.hold)
		h.await(hd.turn, "the turn that continues as new", "held")
		raise(h, "held", "t3")
		close(hd.raised)
		h.expect("held", api.RUNTIME_STATUS_COMPLETED, want)
	})
}

func TestWorkerActivityRetries(t *testing.T) {
	var flakyRuns, brokenRuns atomic.Int32
	policy := func(attempts int) *task.RetryPolicy {
		return &task.RetryPolicy{MaxAttempts: attempts, InitialRetryInterval: 50 * time.Millisecond, BackoffCoefficient: 2}
	}
	h := newHub(t)
	h.listen("A", registry(t,
		map[string]task.Orchestrator{
			"Flaky": func(ctx *task.OrchestrationContext) (any, error) {
				var attempt int32
				err := ctx.CallActivity("FailsTwice", task.WithActivityRetryPolicy(policy(3))).Await(&attempt)
				return attempt, err
			},
			"Broken": func(ctx *task.OrchestrationContext) (any, error) {
				return nil, ctx.CallActivity("AlwaysFails", task.WithActivityRetryPolicy(policy(2))).Await(nil)
			},
		},
		map[string]task.Activity{
			"FailsTwice": func(task.ActivityContext) (any, error) {
				if n := flakyRuns.Add(1); n < 3 {
					return nil, fmt.Errorf("attempt %d fails", n)
				} else {
					return n, nil
				}
			},
			"AlwaysFails": func(task.ActivityContext) (any, error) {
				return nil, fmt.Errorf("attempt %d fails", brokenRuns.Add(1))
			},
		}))

	h.schedule("Flaky", "flaky")
	h.expect("flaky", api.RUNTIME_STATUS_COMPLETED, "3")
	if n := flakyRuns.Load(); n != 3 {
		t.Errorf("FailsTwice ran %d times, want 3", n)
	}

	h.schedule("Broken", "broken")
	h.failed("broken", "attempt 2 fails")
	if n := brokenRuns.Load(); n != 2 {
		t.Errorf("AlwaysFails ran %d times, want 2 (MaxAttempts)", n)
	}
}

func TestWorkerSubOrchestrationRetries(t *testing.T) {
	var attempts atomic.Int32
	h := newHub(t)
	h.listen("A", registry(t,
		map[string]task.Orchestrator{
			"RetriesChild": func(ctx *task.OrchestrationContext) (any, error) {
				var out string
				policy := &task.RetryPolicy{MaxAttempts: 3, InitialRetryInterval: 50 * time.Millisecond}
				err := ctx.CallSubOrchestrator("FailsFirst", task.WithSubOrchestrationRetryPolicy(policy)).Await(&out)
				return out, err
			},
			// FailsFirst fails in its first instance and returns "ok" in the next.
			"FailsFirst": func(ctx *task.OrchestrationContext) (any, error) {
				var attempt int32
				if err := ctx.CallActivity("Attempt").Await(&attempt); err != nil {
					return nil, err
				}
				if attempt == 1 {
					return nil, errors.New("the first attempt fails")
				}
				return "ok", nil
			},
		},
		map[string]task.Activity{"Attempt": func(task.ActivityContext) (any, error) { return attempts.Add(1), nil }}))
	h.schedule("RetriesChild", "retries-child")
	h.expect("retries-child", api.RUNTIME_STATUS_COMPLETED, `"ok"`)
	if n := attempts.Load(); n != 2 {
		t.Errorf("FailsFirst ran %d times, want 2", n)
	}
}

// TestWorkerCustomStatus sets a custom status and reads it back. The v0.6.0 SDK sends
// SetCustomStatus's string as it is, JSON or not: JSON comes back as sent; other text comes back
// as sent (the sidecar) or as a JSON string of it (reprise serve, whose management API and
// dashboard speak JSON: docs/grpc.md).
func TestWorkerCustomStatus(t *testing.T) {
	const waiting = "waiting for approval"
	h := newHub(t)
	h.listen("A", registry(t, map[string]task.Orchestrator{"Status": func(ctx *task.OrchestrationContext) (any, error) {
		ctx.SetCustomStatus(waiting)
		if err := ctx.WaitForSingleEvent("approval", -1).Await(nil); err != nil {
			return nil, err
		}
		ctx.SetCustomStatus(`{"approved":true}`)
		return nil, nil
	}}, nil))
	h.schedule("Status", "status")
	m := h.waitFor("status", "a custom status", func(m *api.OrchestrationMetadata) bool {
		return m.SerializedCustomStatus != "" || m.IsComplete()
	})
	if cs := m.SerializedCustomStatus; m.RuntimeStatus != api.RUNTIME_STATUS_RUNNING || (cs != waiting && cs != strconv.Quote(waiting)) {
		t.Fatalf("instance status is %s; want RUNNING with custom status %s, as text or as a JSON string", h.describe("status"), waiting)
	}
	if err := h.c.RaiseEvent(h.ctx, "status", "approval"); err != nil {
		t.Fatalf("RaiseEvent: %v", err)
	}
	if m := h.expect("status", api.RUNTIME_STATUS_COMPLETED, ""); m.SerializedCustomStatus != `{"approved":true}` {
		t.Errorf("custom status %q, want {\"approved\":true}", m.SerializedCustomStatus)
	}
}

// waiterRegistry has "Parent", which calls the sub-orchestrator "Waiter" as <parent ID>-child,
// and "Waiter", which waits for the event "go" and returns its data.
func waiterRegistry(t *testing.T) *task.TaskRegistry {
	return registry(t, map[string]task.Orchestrator{
		"Parent": func(ctx *task.OrchestrationContext) (any, error) {
			var out string
			err := ctx.CallSubOrchestrator("Waiter", task.WithSubOrchestrationInstanceID(string(ctx.ID)+"-child")).Await(&out)
			return out, err
		},
		"Waiter": func(ctx *task.OrchestrationContext) (any, error) {
			var out string
			err := ctx.WaitForSingleEvent("go", -1).Await(&out)
			return out, err
		},
	}, nil)
}

func TestWorkerTerminate(t *testing.T) {
	h := newHub(t)
	h.listen("A", waiterRegistry(t))

	t.Run("recursive", func(t *testing.T) {
		h := h.in(t)
		h.schedule("Parent", "recursive")
		h.status("recursive-child", api.RUNTIME_STATUS_RUNNING)
		// The SDK's TerminateOrchestration is recursive unless told otherwise.
		if err := h.c.TerminateOrchestration(h.ctx, "recursive", api.WithOutput("stop")); err != nil {
			t.Fatalf("TerminateOrchestration: %v", err)
		}
		h.expect("recursive", api.RUNTIME_STATUS_TERMINATED, `"stop"`)
		h.expect("recursive-child", api.RUNTIME_STATUS_TERMINATED, `"stop"`)
	})

	t.Run("not recursive", func(t *testing.T) {
		h := h.in(t)
		h.schedule("Parent", "alone")
		h.status("alone-child", api.RUNTIME_STATUS_RUNNING)
		if err := h.c.TerminateOrchestration(h.ctx, "alone", api.WithOutput("stop"), api.WithRecursiveTerminate(false)); err != nil {
			t.Fatalf("TerminateOrchestration: %v", err)
		}
		h.expect("alone", api.RUNTIME_STATUS_TERMINATED, `"stop"`)
		// The child runs on: it takes its event and completes.
		if err := h.c.RaiseEvent(h.ctx, "alone-child", "go", api.WithEventPayload("on")); err != nil {
			t.Fatalf("RaiseEvent to the child: %v", err)
		}
		h.expect("alone-child", api.RUNTIME_STATUS_COMPLETED, `"on"`)
	})
}

func TestWorkerSuspendResume(t *testing.T) {
	var recorded atomic.Int32
	h := newHub(t)
	h.listen("A", registry(t,
		map[string]task.Orchestrator{"Gate": func(ctx *task.OrchestrationContext) (any, error) {
			var by string
			if err := ctx.WaitForSingleEvent("open", -1).Await(&by); err != nil {
				return nil, err
			}
			return by, ctx.CallActivity("Record").Await(nil)
		}},
		map[string]task.Activity{"Record": func(task.ActivityContext) (any, error) {
			recorded.Add(1)
			return nil, nil
		}}))
	h.schedule("Gate", "gate")
	if _, err := h.c.WaitForOrchestrationStart(h.ctx, "gate"); err != nil {
		t.Fatalf("WaitForOrchestrationStart: %v", err)
	}
	if err := h.c.SuspendOrchestration(h.ctx, "gate", "hold"); err != nil {
		t.Fatalf("SuspendOrchestration: %v", err)
	}
	h.status("gate", api.RUNTIME_STATUS_SUSPENDED)
	if err := h.c.RaiseEvent(h.ctx, "gate", "open", api.WithEventPayload("ana")); err != nil {
		t.Fatalf("RaiseEvent while suspended: %v", err)
	}
	if m, err := h.c.FetchOrchestrationMetadata(h.ctx, "gate"); err != nil || m.RuntimeStatus != api.RUNTIME_STATUS_SUSPENDED || recorded.Load() != 0 {
		t.Errorf("after an event while suspended: %s, Record ran %d times (error %v); want SUSPENDED and 0", h.describe("gate"), recorded.Load(), err)
	}
	if err := h.c.ResumeOrchestration(h.ctx, "gate", "go on"); err != nil {
		t.Fatalf("ResumeOrchestration: %v", err)
	}
	h.expect("gate", api.RUNTIME_STATUS_COMPLETED, `"ana"`)
	if n := recorded.Load(); n != 1 {
		t.Errorf("Record ran %d times, want 1", n)
	}
}

func TestWorkerPurge(t *testing.T) {
	h := newHub(t)
	h.listen("A", waiterRegistry(t))
	for _, id := range []api.InstanceID{"recursive", "alone"} {
		h.schedule("Parent", id)
		child := id + "-child"
		h.status(child, api.RUNTIME_STATUS_RUNNING)
		if err := h.c.RaiseEvent(h.ctx, child, "go", api.WithEventPayload("done")); err != nil {
			t.Fatalf("RaiseEvent %s: %v", child, err)
		}
		h.expect(id, api.RUNTIME_STATUS_COMPLETED, `"done"`)
	}

	t.Run("not recursive", func(t *testing.T) {
		h := h.in(t)
		if err := h.c.PurgeOrchestrationState(h.ctx, "alone"); err != nil {
			t.Fatalf("PurgeOrchestrationState: %v", err)
		}
		h.gone("alone", "a purge")
		if m, err := h.c.FetchOrchestrationMetadata(h.ctx, "alone-child"); err != nil || m.RuntimeStatus != api.RUNTIME_STATUS_COMPLETED {
			t.Errorf("the child after its parent's purge without recursion: %v, %v; want it COMPLETED", m, err)
		}
	})

	t.Run("recursive", func(t *testing.T) {
		h := h.in(t)
		err := h.c.PurgeOrchestrationState(h.ctx, "recursive", api.WithRecursivePurge(true))
		if grpcCode(err) == codes.Unimplemented {
			t.Skipf("the server does not serve a recursive purge (PurgeInstances{instanceId, recursive: true}): %v", err)
		}
		if err != nil {
			t.Fatalf("PurgeOrchestrationState recursive: %v", err)
		}
		h.gone("recursive", "a recursive purge")
		h.gone("recursive-child", "its parent's recursive purge")
	})
}

// hold, in a listener's stepsRegistry, blocks its work at one point: in the activity Step 2 or
// in the turn of Steps that has Step 1's result. entered closes there; the work goes on when
// release closes (or, in the activity, when its context ends).
type hold struct {
	inTurn           bool
	entered, release chan struct{}
}

// stepsRegistry has "Steps", which calls the activity "Step" for 1, 2 and 3 in order and returns
// the results; Step returns "<listener>:<n>" and logs each run in runs.
func stepsRegistry(t *testing.T, name string, runs *runLog, hd *hold) *task.TaskRegistry {
	return registry(t,
		map[string]task.Orchestrator{"Steps": func(ctx *task.OrchestrationContext) (any, error) {
			results := make([]string, 3)
			for i := range results {
				if err := ctx.CallActivity("Step", task.WithActivityInput(i+1)).Await(&results[i]); err != nil {
					return nil, err
				}
				if hd != nil && hd.inTurn && i == 0 && !ctx.IsReplaying {
					close(hd.entered)
					<-hd.release
				}
			}
			return results, nil
		}},
		map[string]task.Activity{"Step": func(ctx task.ActivityContext) (any, error) {
			var n int
			if err := ctx.GetInput(&n); err != nil {
				return nil, err
			}
			result := fmt.Sprintf("%s:%d", name, n)
			runs.add(result)
			if hd != nil && !hd.inTurn && n == 2 {
				close(hd.entered)
				select {
				case <-ctx.Context().Done():
					return nil, ctx.Context().Err()
				case <-hd.release:
				}
			}
			return result, nil
		}})
}

type runLog struct {
	mu   sync.Mutex
	runs []string
}

func (l *runLog) add(run string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.runs = append(l.runs, run)
}

func (l *runLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.runs)
}

// TestWorkerGoesAway stops a listener while it runs an activity or an orchestrator turn, and
// starts another: the server must hand the work item to the new listener, which finishes the
// instance without running again what the first one completed.
func TestWorkerGoesAway(t *testing.T) {
	for _, inTurn := range []bool{false, true} {
		for _, c := range []struct {
			name  string
			leave func(*listener)
		}{
			{"context canceled", func(l *listener) { l.cancel() }},
			{"connection closed", func(l *listener) { l.conn.Close() }},
		} {
			where, wantRuns := "activity", []string{"A:1", "A:2", "B:2", "B:3"}
			if inTurn {
				where, wantRuns = "turn", []string{"A:1", "B:2", "B:3"}
			}
			t.Run(where+" in flight, "+c.name, func(t *testing.T) {
				h := newHub(t)
				var runs runLog
				hd := &hold{inTurn: inTurn, entered: make(chan struct{}), release: make(chan struct{})}
				a := h.listen("A", stepsRegistry(t, "A", &runs, hd))
				h.schedule("Steps", "steps")
				h.await(hd.entered, "listener A holding the "+where, "steps")
				c.leave(a)
				h.listen("B", stepsRegistry(t, "B", &runs, nil))
				h.expect("steps", api.RUNTIME_STATUS_COMPLETED, `["A:1","B:2","B:3"]`)
				// A's work, now released, cannot complete: its stream or its connection is gone.
				close(hd.release)
				if got := runs.get(); !slices.Equal(got, wantRuns) {
					t.Errorf("Step ran as %v, want %v", got, wantRuns)
				}
			})
		}
	}
}

// TestWorkerTwoListeners runs twenty hello sequences on two listeners of the same functions:
// all finish, and each listener gets some of the work.
func TestWorkerTwoListeners(t *testing.T) {
	const instances = 20
	h := newHub(t)
	var items [2]atomic.Int32
	for i, name := range []string{"A", "B"} {
		r := registry(t,
			map[string]task.Orchestrator{"HelloSequence": func(ctx *task.OrchestrationContext) (any, error) {
				items[i].Add(1)
				return helloSequence(ctx)
			}},
			map[string]task.Activity{"SayHello": func(ctx task.ActivityContext) (any, error) {
				items[i].Add(1)
				return sayHello(ctx)
			}})
		h.listen(name, r)
	}
	for i := range instances {
		h.schedule("HelloSequence", api.InstanceID(fmt.Sprintf("hello-%02d", i)))
	}
	for i := range instances {
		h.expect(api.InstanceID(fmt.Sprintf("hello-%02d", i)), api.RUNTIME_STATUS_COMPLETED, helloOutput)
	}
	a, b := items[0].Load(), items[1].Load()
	t.Logf("work items run: A %d, B %d", a, b)
	if a == 0 || b == 0 {
		t.Errorf("work items run: A %d, B %d; want both listeners to get some of the %d instances' turns and activities", a, b, instances)
	}
}

package reprise_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reprise-dev/reprise"
	"github.com/reprise-dev/reprise/internal/hosttest"
)

func output[T any](t *testing.T, inst *reprise.Instance) T {
	t.Helper()
	if inst.Status != reprise.StatusCompleted {
		t.Fatalf("instance %s: status %s, output %s, failure %+v", inst.ID, inst.Status, inst.Output, inst.Failure)
	}
	var v T
	if err := json.Unmarshal(inst.Output, &v); err != nil {
		t.Fatalf("output %s: %v", inst.Output, err)
	}
	return v
}

var double = reprise.NewActivity("double", func(ctx context.Context, n int) (int, error) { return 2 * n, nil })

func testFanOutFanIn1000(t *testing.T, s featureStore) {
	fanOut := reprise.NewOrchestrator("fan_out", func(ctx *reprise.OrchestrationContext, n int) (int, error) {
		tasks := make([]*reprise.Task[int], n)
		for i := range tasks {
			tasks[i] = double.Call(ctx, i)
		}
		results, err := reprise.All(ctx, tasks...).Await()
		if err != nil {
			return 0, err
		}
		sum := 0
		for i, r := range results {
			if r != 2*i {
				return 0, fmt.Errorf("result %d is %d", i, r)
			}
			sum += r
		}
		return sum, nil
	})
	app := s.start(t, []reprise.Definition{double, fanOut})
	id, err := fanOut.Start(testCtx(t), app.Client(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	if got := output[int](t, waitDone(t, app.Client(), id)); got != 999*1000 {
		t.Fatalf("sum %d, want %d", got, 999*1000)
	}
}

func testSubOrchestrations(t *testing.T, s featureStore) {
	child := reprise.NewOrchestrator("child", func(ctx *reprise.OrchestrationContext, n int) (string, error) {
		if n < 0 {
			return "", &reprise.Error{Type: "Negative", Message: "negative input", Details: map[string]int{"n": n}}
		}
		v, err := double.Call(ctx, n).Await()
		return fmt.Sprintf("%s:%d", ctx.ParentInstanceID(), v), err
	})
	parent := reprise.NewOrchestrator("parent", func(ctx *reprise.OrchestrationContext, _ reprise.None) ([]string, error) {
		a := child.Call(ctx, 1)
		b := child.Call(ctx, 2, reprise.WithInstanceID(ctx.InstanceID()+"-fixed"))
		out, err := reprise.All(ctx, a, b).Await()
		if err != nil {
			return nil, err
		}
		_, err = child.Call(ctx, -1).Await()
		var tf *reprise.TaskFailedError
		if !errors.As(err, &tf) || tf.Kind != "sub-orchestration" || tf.Failure.Type != "Negative" || string(tf.Failure.Details) != `{"n":-1}` {
			return nil, fmt.Errorf("want a typed sub-orchestration failure, got %#v", err)
		}
		return out, nil
	})
	app := s.start(t, []reprise.Definition{double, child, parent})
	ctx := testCtx(t)
	id, err := parent.Start(ctx, app.Client(), reprise.None{}, reprise.WithInstanceID("parent-1"))
	if err != nil {
		t.Fatal(err)
	}
	got := output[[]string](t, waitDone(t, app.Client(), id))
	if len(got) != 2 || got[0] != "parent-1:2" || got[1] != "parent-1:4" {
		t.Fatalf("output %v", got)
	}
	sub, err := app.Client().GetInstance(ctx, "parent-1-fixed")
	if err != nil {
		t.Fatal(err)
	}
	if sub.ParentInstanceID != "parent-1" || sub.Status != reprise.StatusCompleted {
		t.Fatalf("sub-orchestration %+v", sub)
	}
}

func testDurableTimer(t *testing.T, s featureStore) {
	timer := reprise.NewOrchestrator("timer", func(ctx *reprise.OrchestrationContext, _ reprise.None) (bool, error) {
		start := ctx.Now()
		if _, err := ctx.CreateTimer(50 * time.Millisecond).Await(); err != nil {
			return false, err
		}
		// A cancelled timer completes at once with ErrCanceled.
		long := ctx.CreateTimer(time.Hour)
		long.Cancel()
		if _, err := long.Await(); !errors.Is(err, reprise.ErrCanceled) {
			return false, fmt.Errorf("cancelled timer: %v", err)
		}
		return !ctx.Now().Before(start.Add(50 * time.Millisecond)), nil
	})
	app := s.start(t, []reprise.Definition{timer})
	id, err := timer.Start(testCtx(t), app.Client(), reprise.None{})
	if err != nil {
		t.Fatal(err)
	}
	if !output[bool](t, waitDone(t, app.Client(), id)) {
		t.Fatal("the timer fired before its time")
	}
}

var approval = reprise.NewOrchestrator("approval", func(ctx *reprise.OrchestrationContext, timeout time.Duration) ([]string, error) {
	var got []string
	for range 2 {
		v, err := reprise.WaitForEvent[string](ctx, "Approve", timeout).Await()
		if errors.Is(err, reprise.ErrTimeout) {
			got = append(got, "timeout")
			continue
		}
		if err != nil {
			return nil, err
		}
		got = append(got, v)
	}
	return got, nil
})

func testEventsRaisedBeforeAndAfterTheWait(t *testing.T, s featureStore) {
	gate := make(chan struct{})
	waiter := reprise.NewOrchestrator("waiter", func(ctx *reprise.OrchestrationContext, _ reprise.None) ([]string, error) {
		// Block on an activity first so that both events arrive before the wait starts.
		if _, err := reprise.CallActivity[reprise.None](ctx, "gate", nil).Await(); err != nil {
			return nil, err
		}
		a, err := reprise.WaitForEvent[string](ctx, "Approve", 0).Await()
		if err != nil {
			return nil, err
		}
		b, err := reprise.WaitForEvent[string](ctx, "approve", 0).Await() // names are case-insensitive
		if err != nil {
			return nil, err
		}
		c, err := reprise.WaitForEvent[string](ctx, "Approve", 0).Await()
		return []string{a, b, c}, err
	})
	gateActivity := reprise.NewActivity("gate", func(ctx context.Context, _ reprise.None) (reprise.None, error) {
		<-gate
		return reprise.None{}, nil
	})
	app := s.start(t, []reprise.Definition{waiter, gateActivity})
	ctx := testCtx(t)
	c := app.Client()
	id, err := waiter.Start(ctx, c, reprise.None{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitForStart(ctx, id); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"first", "second"} {
		if err := c.RaiseEvent(ctx, id, "Approve", v); err != nil {
			t.Fatal(err)
		}
	}
	close(gate)
	waitForHistory(t, c, id, "EventRaised", 2)
	if err := c.RaiseEvent(ctx, id, "APPROVE", "third"); err != nil {
		t.Fatal(err)
	}
	got := output[[]string](t, waitDone(t, c, id))
	if strings.Join(got, ",") != "first,second,third" {
		t.Fatalf("events %v, want first,second,third", got)
	}
	if err := c.RaiseEvent(ctx, id, "Approve", "late"); !errors.Is(err, reprise.ErrInstanceFinished) {
		t.Fatalf("raising on a finished instance: %v, want ErrInstanceFinished", err)
	}
	if err := c.RaiseEvent(ctx, "no-such-instance", "Approve", 1); !errors.Is(err, reprise.ErrInstanceNotFound) {
		t.Fatalf("raising on a missing instance: %v, want ErrInstanceNotFound", err)
	}
}

// waitForHistory waits until the instance's history has n events of the type.
func waitForHistory(t *testing.T, c *reprise.Client, id, eventType string, n int) {
	t.Helper()
	hosttest.WaitForHistory(t, c, id, eventType, n)
}

func testEventTimeout(t *testing.T, s featureStore) {
	app := s.start(t, []reprise.Definition{approval})
	ctx := testCtx(t)
	c := app.Client()
	id, err := approval.Start(ctx, c, 30*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	got := output[[]string](t, waitDone(t, c, id))
	if strings.Join(got, ",") != "timeout,timeout" {
		t.Fatalf("got %v, want two timeouts", got)
	}
	// An event that arrives in time wins over the timer.
	id2, err := approval.Start(ctx, c, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"yes", "again"} {
		if err := c.RaiseEvent(ctx, id2, "Approve", v); err != nil {
			t.Fatal(err)
		}
	}
	if got := output[[]string](t, waitDone(t, c, id2)); strings.Join(got, ",") != "yes,again" {
		t.Fatalf("got %v", got)
	}
}

func testContinueAsNewCarriesEvents(t *testing.T, s featureStore) {
	counter := reprise.NewOrchestrator("counter", func(ctx *reprise.OrchestrationContext, total int) (int, error) {
		v, err := reprise.WaitForEvent[int](ctx, "add", 0).Await()
		if err != nil {
			return 0, err
		}
		if v == 0 {
			return total, nil
		}
		// Events raised meanwhile must reach the next execution.
		return 0, ctx.ContinueAsNew(total+v, true)
	})
	app := s.start(t, []reprise.Definition{counter})
	ctx := testCtx(t)
	c := app.Client()
	id, err := counter.Start(ctx, c, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []int{1, 2, 3, 4, 0} {
		if err := c.RaiseEvent(ctx, id, "add", v); err != nil {
			t.Fatal(err)
		}
	}
	inst := waitDone(t, c, id)
	if got := output[int](t, inst); got != 10 {
		t.Fatalf("total %d, want 10", got)
	}
	full, err := c.GetInstance(ctx, id, reprise.WithHistory())
	if err != nil {
		t.Fatal(err)
	}
	if string(full.Input) != "10" {
		t.Errorf("input of the last execution %s, want 10", full.Input)
	}
	if n := len(full.History); n == 0 || full.History[0].Type != "OrchestratorStarted" {
		t.Errorf("history of the last execution starts with %v", full.History)
	}
}

func testRetriesWithBackoff(t *testing.T, s featureStore) {
	var calls atomic.Int32
	var attempts sync.Map
	flaky := reprise.NewActivity("flaky", func(ctx context.Context, failures int) (string, error) {
		info, _ := reprise.ActivityInfoFrom(ctx)
		attempts.Store(info.Attempt, true)
		if int(calls.Add(1)) <= failures {
			return "", errors.New("transient")
		}
		return fmt.Sprintf("ok on attempt %d", info.Attempt), nil
	})
	policy := reprise.RetryPolicy{FirstInterval: 10 * time.Millisecond, BackoffCoefficient: 2, MaxInterval: 25 * time.Millisecond, MaxAttempts: 4}
	retrying := reprise.NewOrchestrator("retrying", func(ctx *reprise.OrchestrationContext, failures int) (string, error) {
		return flaky.Call(ctx, failures, reprise.WithRetry(policy)).Await()
	})
	app := s.start(t, []reprise.Definition{flaky, retrying})
	ctx := testCtx(t)
	c := app.Client()
	id, err := retrying.Start(ctx, c, 3)
	if err != nil {
		t.Fatal(err)
	}
	if got := output[string](t, waitDone(t, c, id)); got != "ok on attempt 4" {
		t.Fatalf("got %q", got)
	}
	full, err := c.GetInstance(ctx, id, reprise.WithHistory())
	if err != nil {
		t.Fatal(err)
	}
	var timers []time.Duration
	for _, e := range full.History {
		if e.Type == "TimerCreated" {
			timers = append(timers, e.FireAt.Sub(e.Timestamp).Round(time.Millisecond))
		}
	}
	want := []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 25 * time.Millisecond}
	if fmt.Sprint(timers) != fmt.Sprint(want) {
		t.Fatalf("retry timers %v, want %v (durable timers with backoff, capped)", timers, want)
	}
	// Out of attempts: the failure reaches the orchestrator, typed.
	calls.Store(0)
	id2, err := retrying.Start(ctx, c, 10)
	if err != nil {
		t.Fatal(err)
	}
	inst := waitDone(t, c, id2)
	if inst.Status != reprise.StatusFailed || inst.Failure == nil || !strings.Contains(inst.Failure.Message, "transient") {
		t.Fatalf("status %s, failure %+v", inst.Status, inst.Failure)
	}
	if calls.Load() != 4 {
		t.Fatalf("%d attempts, want 4", calls.Load())
	}
}

func testPanicsAreFailures(t *testing.T, s featureStore) {
	boom := reprise.NewActivity("boom", func(ctx context.Context, _ reprise.None) (string, error) {
		panic("activity exploded")
	})
	orch := reprise.NewOrchestrator("panicky", func(ctx *reprise.OrchestrationContext, mode string) (string, error) {
		if mode == "orchestrator" {
			var s []int
			_ = s[len(mode)] // index out of range
		}
		_, err := boom.Call(ctx, reprise.None{}).Await()
		var tf *reprise.TaskFailedError
		if errors.As(err, &tf) && tf.Failure.Type == "panic" && strings.Contains(tf.Failure.StackTrace, "goroutine") {
			return "caught: " + tf.Failure.Message, nil
		}
		return "", fmt.Errorf("unexpected %v", err)
	})
	app := s.start(t, []reprise.Definition{boom, orch})
	ctx := testCtx(t)
	c := app.Client()
	id, _ := orch.Start(ctx, c, "activity")
	if got := output[string](t, waitDone(t, c, id)); !strings.Contains(got, "activity exploded") {
		t.Fatalf("got %q", got)
	}
	id2, _ := orch.Start(ctx, c, "orchestrator")
	inst := waitDone(t, c, id2)
	if inst.Status != reprise.StatusFailed || inst.Failure.Type != "panic" || !strings.Contains(inst.Failure.Message, "index out of range") || inst.Failure.StackTrace == "" {
		t.Fatalf("status %s failure %+v", inst.Status, inst.Failure)
	}
	var msg string
	if err := json.Unmarshal(inst.Output, &msg); err != nil || msg != inst.Failure.Message {
		t.Fatalf("a failed instance's output is its failure message, got %s", inst.Output)
	}
}

func testRecursiveTerminate(t *testing.T, s featureStore) {
	sleeper := reprise.NewOrchestrator("sleeper", func(ctx *reprise.OrchestrationContext, depth int) (string, error) {
		if depth > 0 {
			return reprise.CallSubOrchestrator[string](ctx, "sleeper", depth-1).Await()
		}
		_, err := reprise.WaitForEvent[string](ctx, "never", 0).Await()
		return "woke", err
	})
	app := s.start(t, []reprise.Definition{sleeper})
	ctx := testCtx(t)
	c := app.Client()
	id, err := sleeper.Start(ctx, c, 2, reprise.WithInstanceID("root"))
	if err != nil {
		t.Fatal(err)
	}
	leaf := "root:0:0"
	waitStatus(t, c, leaf, reprise.StatusRunning)
	if err := c.Terminate(ctx, id, "enough"); err != nil {
		t.Fatal(err)
	}
	for _, iid := range []string{"root", "root:0", leaf} {
		inst := waitDone(t, c, iid)
		if inst.Status != reprise.StatusTerminated {
			t.Fatalf("%s: status %s", iid, inst.Status)
		}
		if string(inst.Output) != `"enough"` {
			t.Errorf("%s: output %s, want the reason", iid, inst.Output)
		}
	}
	if err := c.Terminate(ctx, id, "again"); !errors.Is(err, reprise.ErrInstanceFinished) {
		t.Fatalf("terminating a terminated instance: %v", err)
	}
}

// waitStatus waits until the instance exists with the status.
func waitStatus(t *testing.T, c *reprise.Client, id string, want reprise.RuntimeStatus) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		inst, err := c.GetInstance(context.Background(), id)
		if err == nil && inst.Status == want {
			return
		}
		if err != nil && !errors.Is(err, reprise.ErrInstanceNotFound) {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("instance %s never reached %s (last: %v, %v)", id, want, inst, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		if err == nil {
			c.WaitForStart(ctx, id) // returns at the next change or after the short timeout
		} else {
			<-ctx.Done()
		}
		cancel()
	}
}

func testSuspendResumeKeepsEvents(t *testing.T, s featureStore) {
	app := s.start(t, []reprise.Definition{approval})
	ctx := testCtx(t)
	c := app.Client()
	id, err := approval.Start(ctx, c, time.Duration(0))
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, id, reprise.StatusRunning)
	if err := c.Suspend(ctx, id, "hold on"); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, id, reprise.StatusSuspended)
	for _, v := range []string{"a", "b"} {
		if err := c.RaiseEvent(ctx, id, "Approve", v); err != nil {
			t.Fatal(err)
		}
	}
	waitForHistory(t, c, id, "EventRaised", 2)
	inst, err := c.GetInstance(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if inst.Status != reprise.StatusSuspended {
		t.Fatalf("a suspended instance processed events: status %s", inst.Status)
	}
	if err := c.Resume(ctx, id, "go on"); err != nil {
		t.Fatal(err)
	}
	if got := output[[]string](t, waitDone(t, c, id)); strings.Join(got, ",") != "a,b" {
		t.Fatalf("got %v", got)
	}
}

func testRestart(t *testing.T, s featureStore) {
	var calls atomic.Int32
	count := reprise.NewActivity("count", func(ctx context.Context, s string) (string, error) {
		calls.Add(1)
		return s + "!", nil
	})
	orch := reprise.NewOrchestrator("restartable", func(ctx *reprise.OrchestrationContext, s string) (string, error) {
		return count.Call(ctx, s).Await()
	})
	app := s.start(t, []reprise.Definition{count, orch})
	ctx := testCtx(t)
	c := app.Client()
	id, _ := orch.Start(ctx, c, "hi", reprise.WithInstanceID("r1"))
	waitDone(t, c, id)
	newID, err := c.Restart(ctx, id, true)
	if err != nil || newID == id {
		t.Fatalf("restart with a new ID: %q, %v", newID, err)
	}
	if got := output[string](t, waitDone(t, c, newID)); got != "hi!" {
		t.Fatalf("restarted output %q", got)
	}
	sameID, err := c.Restart(ctx, id, false)
	if err != nil || sameID != id {
		t.Fatalf("restart with the same ID: %q, %v", sameID, err)
	}
	if got := output[string](t, waitDone(t, c, id)); got != "hi!" {
		t.Fatalf("output %q", got)
	}
	if calls.Load() != 3 {
		t.Fatalf("%d activity calls, want 3", calls.Load())
	}
	if _, err := c.Restart(ctx, "missing", true); !errors.Is(err, reprise.ErrInstanceNotFound) {
		t.Fatalf("restart missing: %v", err)
	}
}

func testReusePolicy(t *testing.T, s featureStore) {
	app := s.start(t, []reprise.Definition{approval})
	ctx := testCtx(t)
	c := app.Client()
	if _, err := approval.Start(ctx, c, time.Duration(0), reprise.WithInstanceID("same")); err != nil {
		t.Fatal(err)
	}
	if _, err := approval.Start(ctx, c, time.Duration(0), reprise.WithInstanceID("same")); !errors.Is(err, reprise.ErrInstanceExists) {
		t.Fatalf("starting a running ID: %v, want ErrInstanceExists", err)
	}
	if _, err := approval.Start(ctx, c, time.Duration(0), reprise.WithInstanceID("bad/id")); !errors.Is(err, reprise.ErrInvalidInstanceID) {
		t.Fatalf("invalid ID: %v", err)
	}
	if _, err := c.StartNew(ctx, "nobody", nil); !errors.Is(err, reprise.ErrNotRegistered) {
		t.Fatalf("unknown orchestrator: %v", err)
	}
}

func testRewind(t *testing.T, s featureStore) {
	var broken atomic.Bool
	broken.Store(true)
	var stepCalls atomic.Int32
	step := reprise.NewActivity("step", func(ctx context.Context, s string) (string, error) {
		stepCalls.Add(1)
		if s == "fragile" && broken.Load() {
			return "", errors.New("downstream unavailable")
		}
		return s + " done", nil
	})
	orch := reprise.NewOrchestrator("rewindable", func(ctx *reprise.OrchestrationContext, _ reprise.None) ([]string, error) {
		a, err := step.Call(ctx, "solid").Await()
		if err != nil {
			return nil, err
		}
		b, err := step.Call(ctx, "fragile").Await()
		if err != nil {
			return nil, err
		}
		return []string{a, b}, nil
	})
	app := s.start(t, []reprise.Definition{step, orch})
	ctx := testCtx(t)
	c := app.Client()
	id, _ := orch.Start(ctx, c, reprise.None{})
	if inst := waitDone(t, c, id); inst.Status != reprise.StatusFailed {
		t.Fatalf("status %s", inst.Status)
	}
	if err := c.Rewind(ctx, "missing", "x"); !errors.Is(err, reprise.ErrInstanceNotFound) {
		t.Fatalf("rewind missing: %v", err)
	}
	broken.Store(false)
	if err := c.Rewind(ctx, id, "fixed downstream"); err != nil {
		t.Fatal(err)
	}
	waitForHistory(t, c, id, "ExecutionRewound", 1) // until then the instance still shows Failed
	got := output[[]string](t, waitDone(t, c, id))
	if strings.Join(got, ",") != "solid done,fragile done" {
		t.Fatalf("got %v", got)
	}
	if stepCalls.Load() != 3 {
		t.Fatalf("%d activity calls, want 3: the succeeded step must not run again", stepCalls.Load())
	}
	if err := c.Rewind(ctx, id, "again"); !errors.Is(err, reprise.ErrNotFailed) {
		t.Fatalf("rewinding a completed instance: %v", err)
	}
}

func testPurge(t *testing.T, s featureStore) {
	app := s.start(t, []reprise.Definition{sayHello, helloSequence, approval})
	ctx := testCtx(t)
	c := app.Client()
	var ids []string
	for i := range 5 {
		id, err := helloSequence.Start(ctx, c, reprise.None{}, reprise.WithInstanceID(fmt.Sprintf("p%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	for _, id := range ids {
		waitDone(t, c, id)
	}
	running, _ := approval.Start(ctx, c, time.Duration(0), reprise.WithInstanceID("running"))
	if err := c.PurgeInstance(ctx, running); !errors.Is(err, reprise.ErrInstanceActive) {
		t.Fatalf("purging a running instance: %v, want ErrInstanceActive", err)
	}
	if err := c.PurgeInstance(ctx, "p0"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetInstance(ctx, "p0"); !errors.Is(err, reprise.ErrInstanceNotFound) {
		t.Fatalf("purged instance still there: %v", err)
	}
	if err := c.PurgeInstance(ctx, "p0"); !errors.Is(err, reprise.ErrInstanceNotFound) {
		t.Fatalf("purging twice: %v", err)
	}
	n, err := c.PurgeInstances(ctx, reprise.PurgeFilter{Statuses: []reprise.RuntimeStatus{reprise.StatusCompleted}})
	if err != nil || n != 4 {
		t.Fatalf("purged %d (%v), want 4", n, err)
	}
	if _, err := c.GetInstance(ctx, running); err != nil {
		t.Fatalf("the running instance must survive a purge by filter: %v", err)
	}
	if _, err := c.PurgeInstances(ctx, reprise.PurgeFilter{Statuses: []reprise.RuntimeStatus{reprise.StatusRunning}}); err == nil {
		t.Fatal("purging Running instances must be refused")
	}
}

func testQueryPaging(t *testing.T, s featureStore) {
	app := s.start(t, []reprise.Definition{sayHello, helloSequence, approval})
	ctx := testCtx(t)
	c := app.Client()
	for i := range 25 {
		if _, err := helloSequence.Start(ctx, c, reprise.None{}, reprise.WithInstanceID(fmt.Sprintf("q-%02d", i))); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 25 {
		waitDone(t, c, fmt.Sprintf("q-%02d", i))
	}
	if _, err := approval.Start(ctx, c, time.Duration(0), reprise.WithInstanceID("other")); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	token, pages := "", 0
	for {
		page, next, err := c.ListInstances(ctx, reprise.Query{IDPrefix: "q-", PageSize: 10, ContinuationToken: token,
			Statuses: []reprise.RuntimeStatus{reprise.StatusCompleted}})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, inst := range page {
			if seen[inst.ID] {
				t.Fatalf("%s listed twice", inst.ID)
			}
			seen[inst.ID] = true
		}
		if next == "" {
			break
		}
		token = next
		if pages > 10 {
			t.Fatal("paging does not end")
		}
	}
	if len(seen) != 25 || pages < 3 {
		t.Fatalf("%d instances in %d pages, want 25 in at least 3", len(seen), pages)
	}
	page, _, err := c.ListInstances(ctx, reprise.Query{Statuses: []reprise.RuntimeStatus{reprise.StatusRunning, reprise.StatusPending}})
	if err != nil || len(page) != 1 || page[0].ID != "other" {
		t.Fatalf("status filter: %v %v", page, err)
	}

	// By orchestrator name (case-insensitive), newest first, and counted.
	page, _, err = c.ListInstances(ctx, reprise.Query{Name: "HELLO_Sequence_Orchestrator", PageSize: 3, NewestFirst: true})
	if err != nil || len(page) != 3 || page[0].ID != "q-24" || page[2].ID != "q-22" {
		t.Fatalf("newest hello sequences: %v %v, want q-24, q-23, q-22", page, err)
	}
	counts, err := c.CountInstances(ctx, reprise.Query{PageSize: 1})
	if err != nil || counts[reprise.StatusCompleted] != 25 || counts[reprise.StatusCompleted]+counts[reprise.StatusRunning]+counts[reprise.StatusPending] != 26 {
		t.Fatalf("counts %v %v, want 25 Completed and the other instance Running or Pending", counts, err)
	}
	counts, err = c.CountInstances(ctx, reprise.Query{Name: "approval_flow_that_does_not_exist"})
	if err != nil || len(counts) != 0 {
		t.Fatalf("counts of an unknown name: %v %v, want none", counts, err)
	}
}

// features are the feature tests, which TestFeatures runs on each store.
var features = []struct {
	name string
	test func(t *testing.T, s featureStore)
}{
	{"FanOutFanIn1000", testFanOutFanIn1000},
	{"SubOrchestrations", testSubOrchestrations},
	{"DurableTimer", testDurableTimer},
	{"EventsRaisedBeforeAndAfterTheWait", testEventsRaisedBeforeAndAfterTheWait},
	{"EventTimeout", testEventTimeout},
	{"ContinueAsNewCarriesEvents", testContinueAsNewCarriesEvents},
	{"RetriesWithBackoff", testRetriesWithBackoff},
	{"PanicsAreFailures", testPanicsAreFailures},
	{"RecursiveTerminate", testRecursiveTerminate},
	{"SuspendResumeKeepsEvents", testSuspendResumeKeepsEvents},
	{"Restart", testRestart},
	{"ReusePolicy", testReusePolicy},
	{"Rewind", testRewind},
	{"Purge", testPurge},
	{"QueryPaging", testQueryPaging},
}

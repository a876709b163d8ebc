package reprisetest_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/reprise-dev/reprise"
	"github.com/reprise-dev/reprise/reprisetest"
)

var greet = reprise.NewActivity("greet", func(_ context.Context, name string) (string, error) {
	return "Hello " + name + "!", nil
})

var longWait = reprise.NewOrchestrator("long_wait", func(ctx *reprise.OrchestrationContext, name string) (string, error) {
	start := ctx.Now()
	if _, err := ctx.CreateTimer(30 * 24 * time.Hour).Await(); err != nil {
		return "", err
	}
	g, err := greet.Call(ctx, name).Await()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s after %v", g, ctx.Now().Sub(start)), nil
})

func TestThirtyDayTimer(t *testing.T) {
	t.Parallel()
	h := reprisetest.New(t, greet, longWait)
	began := time.Now()
	r := h.Run(longWait, "Tokyo")
	r.RequireStatus(reprise.StatusCompleted)
	if got, want := reprisetest.Output[string](r), "Hello Tokyo! after 720h0m0s"; got != want {
		t.Fatalf("output %q, want %q", got, want)
	}
	if got, want := h.Now(), reprisetest.DefaultStart().Add(30*24*time.Hour); !got.Equal(want) {
		t.Errorf("clock reads %v, want %v", got, want)
	}
	want := []string{"OrchestratorStarted", "ExecutionStarted", "TimerCreated",
		"OrchestratorStarted", "TimerFired", "TaskScheduled",
		"OrchestratorStarted", "TaskCompleted", "ExecutionCompleted"}
	if got := r.EventTypes(); !slices.Equal(got, want) {
		t.Errorf("history %v\nwant %v\n%s", got, want, r.Dump())
	}
	t.Logf("30 virtual days in %v", time.Since(began))
}

var charge = reprise.NewActivity("charge", func(_ context.Context, amount int) (string, error) {
	return "", errors.New("the real charge activity must not run in this test")
})

var withRetries = reprise.NewOrchestrator("with_retries", func(ctx *reprise.OrchestrationContext, amount int) (string, error) {
	return charge.Call(ctx, amount, reprise.WithRetry(reprise.RetryPolicy{
		FirstInterval: time.Hour, BackoffCoefficient: 2, MaxAttempts: 4,
	})).Await()
})

func TestRetriesWithBackoff(t *testing.T) {
	t.Parallel()
	h := reprisetest.New(t, charge, withRetries)
	m := reprisetest.MockActivity(h, charge).Do(func(ctx context.Context, amount int) (string, error) {
		info, _ := reprise.ActivityInfoFrom(ctx)
		if info.Attempt < 3 {
			return "", fmt.Errorf("declined (attempt %d)", info.Attempt)
		}
		return fmt.Sprintf("charged %d", amount), nil
	})
	r := h.Run(withRetries, 42)
	r.RequireStatus(reprise.StatusCompleted)
	if got := reprisetest.Output[string](r); got != "charged 42" {
		t.Errorf("output %q, want charged 42", got)
	}
	if got := m.Calls(); !slices.Equal(got, []int{42, 42, 42}) {
		t.Errorf("calls %v, want three of 42", got)
	}
	// Waits of 1h then 2h between the attempts.
	if got, want := h.Now().Sub(reprisetest.DefaultStart()), 3*time.Hour; got != want {
		t.Errorf("virtual time passed %v, want %v", got, want)
	}
}

func TestRetriesExhausted(t *testing.T) {
	t.Parallel()
	h := reprisetest.New(t, charge, withRetries)
	m := reprisetest.MockActivity(h, charge).Fails(errors.New("card expired"))
	r := h.Run(withRetries, 7)
	r.RequireFailed("card expired")
	if m.Count() != 4 {
		t.Errorf("%d attempts, want 4", m.Count())
	}
	if got, want := h.Now().Sub(reprisetest.DefaultStart()), 7*time.Hour; got != want { // 1h + 2h + 4h
		t.Errorf("virtual time passed %v, want %v", got, want)
	}
}

var approval = reprise.NewOrchestrator("approval", func(ctx *reprise.OrchestrationContext, _ reprise.None) (string, error) {
	ok, err := reprise.WaitForEvent[bool](ctx, "approved", 72*time.Hour).Await()
	switch {
	case errors.Is(err, reprise.ErrTimeout):
		return "escalated at " + ctx.Now().Format(time.RFC3339), nil
	case err != nil:
		return "", err
	case ok:
		return "approved at " + ctx.Now().Format(time.RFC3339), nil
	}
	return "rejected", nil
})

func TestWaitForEventTimesOut(t *testing.T) {
	t.Parallel()
	h := reprisetest.New(t, approval)
	r := h.Run(approval, reprise.None{})
	if got, want := reprisetest.Output[string](r), "escalated at 2030-01-04T00:00:00Z"; got != want {
		t.Errorf("output %q, want %q", got, want)
	}
}

func TestEventRaisedByCallback(t *testing.T) {
	t.Parallel()
	h := reprisetest.New(t, approval)
	id := h.Start(approval, reprise.None{})
	h.After(5*time.Hour, func(ctx context.Context, c *reprise.Client) {
		if err := c.RaiseEvent(ctx, id, "approved", true); err != nil {
			t.Errorf("raise: %v", err)
		}
	})
	r := h.Wait(id)[0]
	if got, want := reprisetest.Output[string](r), "approved at 2030-01-01T05:00:00Z"; got != want {
		t.Errorf("output %q, want %q", got, want)
	}
	// The 72-hour timeout timer is still in the store, but Wait stops once the instance is done.
	if got := h.Now(); !got.Equal(reprisetest.DefaultStart().Add(5 * time.Hour)) {
		t.Errorf("clock at %v, want start+5h", got)
	}
}

var fanOut = reprise.NewOrchestrator("fan_out", func(ctx *reprise.OrchestrationContext, n int) (int, error) {
	tasks := make([]*reprise.Task[string], n)
	for i := range tasks {
		tasks[i] = greet.Call(ctx, fmt.Sprint(i))
	}
	out, err := reprise.All(ctx, tasks...).Await()
	total := 0
	for _, s := range out {
		total += len(s)
	}
	return total, err
})

func TestFanOutFanIn(t *testing.T) {
	t.Parallel()
	h := reprisetest.New(t, greet, fanOut)
	r := h.Run(fanOut, 25)
	// "Hello N!" is 8 characters for 0-9 and 9 for 10-24.
	if got := reprisetest.Output[int](r); got != 10*8+15*9 {
		t.Errorf("total %d, want %d", got, 10*8+15*9)
	}
	scheduled := 0
	for _, e := range r.History() {
		if e.Type == "TaskScheduled" {
			scheduled++
		}
	}
	if scheduled != 25 {
		t.Errorf("%d activities scheduled, want 25", scheduled)
	}
}

var shipping = reprise.NewOrchestrator("shipping", func(ctx *reprise.OrchestrationContext, item string) (string, error) {
	if _, err := ctx.CreateTimer(48 * time.Hour).Await(); err != nil {
		return "", err
	}
	return greet.Call(ctx, item).Await()
})

var order = reprise.NewOrchestrator("order", func(ctx *reprise.OrchestrationContext, items []string) ([]string, error) {
	var tasks []*reprise.Task[string]
	for _, it := range items {
		tasks = append(tasks, shipping.Call(ctx, it))
	}
	return reprise.All(ctx, tasks...).Await()
})

func TestSubOrchestrationReal(t *testing.T) {
	t.Parallel()
	h := reprisetest.New(t, greet, shipping, order)
	r := h.Run(order, []string{"book", "pen"})
	if got := reprisetest.Output[[]string](r); !slices.Equal(got, []string{"Hello book!", "Hello pen!"}) {
		t.Errorf("output %v", got)
	}
	if got := h.Now().Sub(reprisetest.DefaultStart()); got != 48*time.Hour {
		t.Errorf("virtual time passed %v, want 48h (the two shipments wait side by side)", got)
	}
}

func TestSubOrchestrationMocked(t *testing.T) {
	t.Parallel()
	h := reprisetest.New(t, greet, shipping, order)
	m := reprisetest.MockOrchestrator(h, shipping).Do(func(ctx *reprise.OrchestrationContext, item string) (string, error) {
		if item == "bomb" {
			return "", errors.New("refused")
		}
		return "shipped " + item, nil
	})
	r := h.Run(order, []string{"book", "pen"})
	if got := reprisetest.Output[[]string](r); !slices.Equal(got, []string{"shipped book", "shipped pen"}) {
		t.Errorf("output %v", got)
	}
	if got := m.Calls(); len(got) != 2 || !slices.Contains(got, "book") || !slices.Contains(got, "pen") {
		t.Errorf("calls %v, want book and pen", got)
	}
	if !h.Now().Equal(reprisetest.DefaultStart()) {
		t.Errorf("the clock moved to %v: the mock has no timer", h.Now())
	}
	r = h.Run(order, []string{"bomb"})
	r.RequireFailed("refused")
}

func TestSubOrchestratorMockedByNameOnly(t *testing.T) {
	t.Parallel()
	caller := reprise.NewOrchestrator("caller", func(ctx *reprise.OrchestrationContext, _ reprise.None) (int, error) {
		return reprise.CallSubOrchestrator[int](ctx, "elsewhere", "x").Await()
	})
	h := reprisetest.New(t, caller)
	reprisetest.MockOrchestratorNamed[string, int](h, "elsewhere").Returns(7)
	if got := reprisetest.Output[int](h.Run(caller, nil)); got != 7 {
		t.Errorf("output %d, want 7", got)
	}
}

var ticker = reprise.NewOrchestrator("ticker", func(ctx *reprise.OrchestrationContext, _ reprise.None) (int, error) {
	n := 0
	for i := 0; i < 10; i++ {
		if _, err := ctx.CreateTimer(time.Hour).Await(); err != nil {
			return n, err
		}
		n++
		if err := ctx.SetCustomStatus(n); err != nil {
			return n, err
		}
	}
	return n, nil
})

func TestSuspendResumeByCallbacks(t *testing.T) {
	t.Parallel()
	h := reprisetest.New(t, ticker)
	id := h.Start(ticker, nil)
	h.After(150*time.Minute, func(ctx context.Context, c *reprise.Client) {
		if err := c.Suspend(ctx, id, "maintenance"); err != nil {
			t.Errorf("suspend: %v", err)
		}
	})
	r := h.Wait(id)[0]
	r.RequireStuck()
	r.RequireStatus(reprise.StatusSuspended)
	if got := reprisetest.CustomStatus[int](r); got != 2 {
		t.Errorf("custom status %d, want 2 ticks before the suspension", got)
	}
	h.After(24*time.Hour, func(ctx context.Context, c *reprise.Client) {
		if err := c.Resume(ctx, id, "done"); err != nil {
			t.Errorf("resume: %v", err)
		}
	})
	r = h.Wait(id)[0]
	if got := reprisetest.Output[int](r); got != 10 {
		t.Errorf("output %d, want 10", got)
	}
}

func TestTerminateByCallback(t *testing.T) {
	t.Parallel()
	h := reprisetest.New(t, ticker)
	id := h.Start(ticker, nil)
	h.At(reprisetest.DefaultStart().Add(90*time.Minute), func(ctx context.Context, c *reprise.Client) {
		if err := c.Terminate(ctx, id, "enough"); err != nil {
			t.Errorf("terminate: %v", err)
		}
	})
	r := h.Wait(id)[0]
	r.RequireStatus(reprise.StatusTerminated)
	if !h.Now().Equal(reprisetest.DefaultStart().Add(90 * time.Minute)) {
		t.Errorf("clock at %v, want start+90m", h.Now())
	}
}

var countdown = reprise.NewOrchestrator("countdown", func(ctx *reprise.OrchestrationContext, n int) (string, error) {
	if n == 0 {
		return "lift-off", nil
	}
	if _, err := ctx.CreateTimer(24 * time.Hour).Await(); err != nil {
		return "", err
	}
	return "", ctx.ContinueAsNew(n-1, false)
})

func TestContinueAsNew(t *testing.T) {
	t.Parallel()
	h := reprisetest.New(t, countdown)
	r := h.Run(countdown, 5)
	if got := reprisetest.Output[string](r); got != "lift-off" {
		t.Errorf("output %q", got)
	}
	if got := h.Now().Sub(reprisetest.DefaultStart()); got != 5*24*time.Hour {
		t.Errorf("virtual time passed %v, want 120h", got)
	}
	if got := string(r.Instance.Input); got != "0" {
		t.Errorf("input of the last execution %s, want 0", got)
	}
}

var waitsForever = reprise.NewOrchestrator("waits_forever", func(ctx *reprise.OrchestrationContext, _ reprise.None) (string, error) {
	return reprise.WaitForEvent[string](ctx, "never", 0).Await()
})

func TestStuckInstanceIsReturned(t *testing.T) {
	t.Parallel()
	h := reprisetest.New(t, waitsForever)
	r := h.Run(waitsForever, nil)
	r.RequireStuck()
	r.RequireStatus(reprise.StatusRunning)
	if got := r.EventTypes(); got[len(got)-1] != "ExecutionStarted" {
		t.Errorf("history %v", got)
	}
}

var hourly = reprise.NewOrchestrator("hourly", func(ctx *reprise.OrchestrationContext, _ reprise.None) (string, error) {
	_, err := ctx.CreateTimer(time.Hour).Await()
	return "done", err
})

func TestAdvanceByHand(t *testing.T) {
	t.Parallel()
	h := reprisetest.New(t, hourly)
	id := h.Start(hourly, nil)
	h.Advance(59 * time.Minute)
	if r := h.Result(id); r.Status != reprise.StatusRunning {
		t.Fatalf("after 59m: %v, want Running", r.Status)
	}
	h.Advance(time.Minute)
	r := h.Result(id)
	r.RequireStatus(reprise.StatusCompleted)
	if !h.Now().Equal(reprisetest.DefaultStart().Add(time.Hour)) {
		t.Errorf("clock at %v, want start+1h", h.Now())
	}
	h.Advance(0) // nothing due: the clock stays
	if !h.Now().Equal(reprisetest.DefaultStart().Add(time.Hour)) {
		t.Errorf("clock at %v after Advance(0)", h.Now())
	}
}

func TestSeveralInstancesAndStartAt(t *testing.T) {
	t.Parallel()
	start := time.Date(2031, time.June, 1, 12, 0, 0, 0, time.UTC)
	h := reprisetest.NewWithOptions(t, reprisetest.Options{Start: start}, greet, longWait, hourly)
	a := h.Start(longWait, "A")
	b := h.Start(hourly, nil, reprise.WithStartTime(start.Add(10*24*time.Hour)))
	rs := h.Wait(a, b)
	rs[0].RequireStatus(reprise.StatusCompleted)
	rs[1].RequireStatus(reprise.StatusCompleted)
	if got := rs[1].Instance.LastUpdatedAt; !got.Equal(start.Add(10*24*time.Hour + time.Hour)) {
		t.Errorf("the scheduled instance finished at %v, want start+10d+1h", got)
	}
}

// Without the execution cache every episode replays the history: the orchestrator mock counts
// each instance once all the same, and a stand-in with a timer replays deterministically.
func TestOrchestratorMockUnderReplay(t *testing.T) {
	t.Parallel()
	h := reprisetest.NewWithOptions(t, reprisetest.Options{AppOptions: []reprise.Option{reprise.WithCacheSize(0)}},
		greet, shipping, order)
	m := reprisetest.MockOrchestrator(h, shipping).Do(func(ctx *reprise.OrchestrationContext, item string) (string, error) {
		if _, err := ctx.CreateTimer(time.Hour).Await(); err != nil {
			return "", err
		}
		return greet.Call(ctx, item).Await()
	})
	r := h.Run(order, []string{"cup", "mug", "jar"})
	if got := reprisetest.Output[[]string](r); !slices.Equal(got, []string{"Hello cup!", "Hello mug!", "Hello jar!"}) {
		t.Errorf("output %v", got)
	}
	if m.Count() != 3 {
		t.Errorf("the mock counted %d instances, want 3 (replays are not calls)", m.Count())
	}
}

package replay_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/reprise-dev/reprise/internal/history"
	"github.com/reprise-dev/reprise/internal/replay"
	"github.com/reprise-dev/reprise/store"
)

func started(name, id string) []history.Event {
	now := time.Now().UTC()
	start := history.New(history.ExecutionStarted, now)
	start.Name, start.InstanceID, start.ExecutionID = name, id, "e1"
	return []history.Event{history.New(history.OrchestratorStarted, now), start}
}

// TestYieldTimeout: Run gives up on an orchestrator that does not yield in time, with an error
// naming it and its instance, and Close does not wait for the stuck goroutine; an orchestrator
// that yields in time is not affected.
func TestYieldTimeout(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	x := replay.New(func(c *replay.Context) ([]byte, error) {
		<-block
		return nil, nil
	})
	x.SetYieldTimeout(50 * time.Millisecond)
	res, err := x.Run(nil, started("blocker", "i1"))
	var dl *replay.DeadlockError
	if !errors.As(err, &dl) || res != nil {
		t.Fatalf("Run = %v, %v; want a *DeadlockError", res, err)
	}
	for _, want := range []string{`orchestrator "blocker"`, `instance "i1"`, "50ms"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not say %s", err, want)
		}
	}
	x.Close() // must return although the orchestrator's goroutine is stuck

	y := replay.New(func(c *replay.Context) ([]byte, error) {
		return c.CallActivity("a", "", nil, nil).Await()
	})
	y.SetYieldTimeout(time.Minute)
	res, err = y.Run(nil, started("fine", "i2"))
	if err != nil || res == nil || res.Done || len(res.Actions) != 1 {
		t.Fatalf("Run = %+v, %v; want one scheduled activity", res, err)
	}
	y.Close()
}

// TestUnwindTimeout: terminating or closing an execution whose deferred calls block does not
// wait for them for ever: past the yield timeout the goroutine is abandoned and Close says so,
// naming the orchestrator; Close of an execution that unwinds in time reports nothing.
func TestUnwindTimeout(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	stubborn := func(c *replay.Context) ([]byte, error) {
		defer func() { <-block }() // runs when the execution is unwound
		return c.WaitForEvent("never", 0).Await()
	}
	for _, terminate := range []bool{true, false} {
		x := replay.New(stubborn)
		x.SetYieldTimeout(time.Minute) // no false deadlock on a loaded machine
		res, err := x.Run(nil, started("stubborn", "i1"))
		if err != nil || res.Done {
			t.Fatalf("Run = %+v, %v; want the orchestrator waiting", res, err)
		}
		x.SetYieldTimeout(50 * time.Millisecond) // bounds the unwinding
		closed := make(chan error, 1)
		go func() {
			if terminate {
				res, err := x.Run(nil, []history.Event{history.New(history.ExecutionTerminated, time.Now())})
				if err != nil || !res.Done || res.Status != store.StatusTerminated {
					t.Errorf("Run(terminate) = %+v, %v; want it terminated", res, err)
				}
			}
			closed <- x.Close()
		}()
		select {
		case err := <-closed:
			var dl *replay.DeadlockError
			if !errors.As(err, &dl) || !dl.Unwinding || !strings.Contains(err.Error(), `orchestrator "stubborn"`) {
				t.Fatalf("terminate %v: Close = %v; want a *DeadlockError that says the unwinding blocked", terminate, err)
			}
		case <-time.After(10 * time.Second): // a hang, not a timing bound
			t.Fatalf("terminate %v: the execution waits for ever on the orchestrator's deferred calls", terminate)
		}
	}

	y := replay.New(func(c *replay.Context) ([]byte, error) {
		defer func() {}()
		return c.WaitForEvent("never", 0).Await()
	})
	y.SetYieldTimeout(time.Minute)
	if _, err := y.Run(nil, started("fine", "i2")); err != nil {
		t.Fatal(err)
	}
	if err := y.Close(); err != nil {
		t.Fatalf("Close of an execution that unwinds = %v", err)
	}
	if err := y.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
}

// TestYieldTimeoutCostsNoAllocationPerYield: the deadlock detector makes one timer per
// execution, not one per yield, so a replay of many steps allocates no more with it than without.
func TestYieldTimeoutCostsNoAllocationPerYield(t *testing.T) {
	fn, old := sequenceOf(100)
	allocs := func(timeout time.Duration) float64 {
		return testing.AllocsPerRun(20, func() {
			x := replay.New(fn)
			x.SetYieldTimeout(timeout)
			if res, err := x.Run(old, []history.Event{history.New(history.OrchestratorStarted, old[0].Time)}); err != nil || !res.Done {
				t.Fatalf("replay: %+v, %v", res, err)
			}
			x.Close()
		})
	}
	without, with := allocs(0), allocs(time.Minute)
	if with > without+5 {
		t.Fatalf("a replay of 100 yields allocates %v times with the yield timeout, %v without: the detector must not allocate per yield", with, without)
	}
}

// sequenceOf returns an orchestrator that calls n activities in sequence, and a history in which
// all of them completed.
func sequenceOf(n int) (replay.Func, []history.Event) {
	fn := func(c *replay.Context) ([]byte, error) {
		for range n {
			if _, err := c.CallActivity("a", "", nil, nil).Await(); err != nil {
				return nil, err
			}
		}
		return []byte(`"done"`), nil
	}
	old := started("seq", "i")
	now := old[0].Time
	for i := range int32(n) {
		s := history.New(history.TaskScheduled, now)
		s.ID, s.Name = i, "a"
		c := history.New(history.TaskCompleted, now)
		c.TaskID, c.Result = i, []byte(`1`)
		old = append(old, s, c)
	}
	return fn, old
}

// BenchmarkReplayYields replays a sequence of 1,000 activities, one yield each, with and without
// the deadlock detector: what the detector costs per yield.
func BenchmarkReplayYields(b *testing.B) {
	fn, old := sequenceOf(1000)
	now := old[0].Time
	for _, timeout := range []time.Duration{0, time.Second} {
		b.Run("timeout="+timeout.String(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				x := replay.New(fn)
				x.SetYieldTimeout(timeout)
				res, err := x.Run(old, []history.Event{history.New(history.OrchestratorStarted, now)})
				if err != nil || !res.Done {
					b.Fatalf("replay: %+v, %v", res, err)
				}
				x.Close()
			}
		})
	}
}

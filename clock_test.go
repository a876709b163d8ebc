package reprise_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/reprise-dev/reprise"
)

// manualClock is a reprise.Clock that moves when the test says.
type manualClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters map[chan struct{}]time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) WaitUntil(t time.Time) (<-chan struct{}, func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan struct{})
	if !c.now.Before(t) {
		close(ch)
		return ch, func() {}
	}
	c.waiters[ch] = t
	return ch, func() {
		c.mu.Lock()
		delete(c.waiters, ch)
		c.mu.Unlock()
	}
}

func (c *manualClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for ch, t := range c.waiters {
		if !c.now.Before(t) {
			close(ch)
			delete(c.waiters, ch)
		}
	}
}

// TestWithClock runs an App, on the SQLite store it opens itself, on a clock ten years ahead of
// real time: the instance's times and ctx.Now() are the clock's, and an hour's timer fires
// when the clock is moved an hour, not before (real time would never get there in the test).
func TestWithClock(t *testing.T) {
	t.Parallel()
	start := time.Now().UTC().AddDate(10, 0, 0).Truncate(time.Second)
	clock := &manualClock{now: start, waiters: map[chan struct{}]time.Time{}}
	nap := reprise.NewOrchestrator("nap", func(ctx *reprise.OrchestrationContext, _ reprise.None) (time.Time, error) {
		if _, err := ctx.CreateTimer(time.Hour).Await(); err != nil {
			return time.Time{}, err
		}
		return ctx.Now(), nil
	})
	app := startApp(t, []reprise.Definition{nap}, reprise.WithClock(clock))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id, err := nap.Start(ctx, app.Client(), reprise.None{})
	if err != nil {
		t.Fatal(err)
	}
	inst, err := app.Client().WaitForStart(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !inst.CreatedAt.Equal(start) {
		t.Errorf("created at %v, want the clock's %v", inst.CreatedAt, start)
	}
	// Started means the first episode, which schedules the timer, has committed.
	inst, err = app.Client().GetInstance(ctx, id, reprise.WithHistory())
	if err != nil {
		t.Fatal(err)
	}
	if inst.Status != reprise.StatusRunning || len(inst.History) == 0 || inst.History[len(inst.History)-1].Type != "TimerCreated" {
		t.Fatalf("after the start: %v, history %+v; want Running, waiting on its timer", inst.Status, inst.History)
	}
	if got := inst.History[len(inst.History)-1].FireAt; !got.Equal(start.Add(time.Hour)) {
		t.Errorf("timer fires at %v, want the clock's start + 1h", got)
	}
	clock.advance(time.Hour)
	done, err := app.Client().WaitForCompletion(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if want := `"` + start.Add(time.Hour).Format(time.RFC3339) + `"`; string(done.Output) != want {
		t.Errorf("output %s, want %s", done.Output, want)
	}
}

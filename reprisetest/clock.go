package reprisetest

import (
	"sync"
	"time"
)

// DefaultStart returns the instant a Harness's virtual clock starts at unless Options.Start
// says otherwise, 2030-01-01T00:00:00Z: fixed, so that histories and outputs that hold times
// are the same on every run.
func DefaultStart() time.Time { return time.Date(2030, time.January, 1, 0, 0, 0, 0, time.UTC) }

// virtualClock is a reprise.Clock that moves only when the harness moves it. Waits for an
// instant end when the clock is set to it or past it.
type virtualClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters map[*clockWaiter]struct{}
}

type clockWaiter struct {
	at time.Time
	ch chan struct{}
}

// closed is ready at once: the wait for an instant that has passed.
var closed = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func newVirtualClock(start time.Time) *virtualClock {
	return &virtualClock{now: start.UTC(), waiters: map[*clockWaiter]struct{}{}}
}

// Now implements reprise.Clock.
func (c *virtualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// WaitUntil implements reprise.Clock.
func (c *virtualClock) WaitUntil(t time.Time) (<-chan struct{}, func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.now.Before(t) {
		return closed, func() {}
	}
	w := &clockWaiter{at: t, ch: make(chan struct{})}
	c.waiters[w] = struct{}{}
	return w.ch, func() {
		c.mu.Lock()
		delete(c.waiters, w)
		c.mu.Unlock()
	}
}

// set moves the clock to t (never back) and ends the waits for instants up to t.
func (c *virtualClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !t.After(c.now) {
		return
	}
	c.now = t.UTC()
	for w := range c.waiters {
		if !c.now.Before(w.at) {
			close(w.ch)
			delete(c.waiters, w)
		}
	}
}

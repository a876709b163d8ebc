package reprisetest

import (
	"testing"
	"time"
)

func TestVirtualClock(t *testing.T) {
	start := DefaultStart()
	c := newVirtualClock(start)
	passed, _ := c.WaitUntil(start)
	select {
	case <-passed:
	default:
		t.Fatal("a wait for the current instant is not ready at once")
	}
	hour, _ := c.WaitUntil(start.Add(time.Hour))
	day, stopDay := c.WaitUntil(start.Add(24 * time.Hour))
	gone, stopGone := c.WaitUntil(start.Add(2 * time.Hour))
	stopGone()
	c.set(start.Add(30 * time.Minute))
	select {
	case <-hour:
		t.Fatal("a wait for +1h ended at +30m")
	default:
	}
	c.set(start.Add(3 * time.Hour))
	select {
	case <-hour:
	default:
		t.Fatal("a wait for +1h did not end at +3h")
	}
	select {
	case <-gone:
		t.Fatal("a released wait was ended")
	case <-day:
		t.Fatal("a wait for +24h ended at +3h")
	default:
	}
	c.set(start) // never back
	if got := c.Now(); !got.Equal(start.Add(3 * time.Hour)) {
		t.Errorf("the clock went back to %v", got)
	}
	stopDay()
	if len(c.waiters) != 0 {
		t.Errorf("%d waiters left", len(c.waiters))
	}
}

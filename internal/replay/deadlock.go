package replay

import (
	"fmt"
	"time"
)

// DeadlockError means the orchestrator ran for longer than the yield timeout without yielding
// (awaiting a task that has not completed, or returning): it blocks outside Await, on a sleep, a
// channel, a lock or I/O, which orchestrator code must not do.
type DeadlockError struct {
	Name       string // the orchestrator
	InstanceID string
	Timeout    time.Duration
	// Unwinding: the orchestrator was being unwound (terminated, or its execution closed) and
	// its deferred calls did not return in time.
	Unwinding bool
}

func (e *DeadlockError) Error() string {
	if e.Unwinding {
		return fmt.Sprintf("orchestrator %q (instance %q) did not finish unwinding within %v: its deferred calls "+
			"block (a sleep, a channel, a lock or I/O?); its goroutine is abandoned; deferred calls in orchestrator "+
			"code must not wait", e.Name, e.InstanceID, e.Timeout)
	}
	return fmt.Sprintf("orchestrator %q (instance %q) did not yield within %v: it blocks outside Await "+
		"(a sleep, a channel, a lock or I/O?); orchestrator code must wait only on tasks (activities, "+
		"timers, events, sub-orchestrations) and do its I/O in activities", e.Name, e.InstanceID, e.Timeout)
}

// SetYieldTimeout makes Run fail with a *DeadlockError when the orchestrator runs for longer
// than d without yielding; 0 (the default) waits for ever. After that error the execution is
// abandoned: its goroutine is still inside the orchestrator's code and may stay there for ever,
// so Close returns without waiting for it and the execution must not be used again.
func (x *Execution) SetYieldTimeout(d time.Duration) { x.yieldTimeout = d }

// waitYield waits for the orchestrator goroutine to yield, for at most the yield timeout; past
// it, it marks the execution stuck and unwinds Run (see recoverDeadlock).
func (x *Execution) waitYield() {
	if x.yieldTimeout <= 0 {
		<-x.yield
		return
	}
	// One timer per execution, reset at each hand-off: a new timer per yield cost about 1 µs and
	// three allocations, on every step of every replay. (Since Go 1.23 a stopped timer delivers
	// no stale tick, so Reset after Stop is safe.)
	if x.yieldTimer == nil {
		x.yieldTimer = time.NewTimer(x.yieldTimeout)
	} else {
		x.yieldTimer.Reset(x.yieldTimeout)
	}
	select {
	case <-x.yield:
		x.yieldTimer.Stop()
	case <-x.yieldTimer.C:
		x.stuck = true
		close(x.abandoned)
		panic(&DeadlockError{Name: x.c.name, InstanceID: x.c.instanceID, Timeout: x.yieldTimeout})
	}
}

// waitUnwind waits for an aborted orchestrator goroutine to exit, for at most the yield timeout
// (as waitYield bounds a yield); past it, it abandons the goroutine and records the error Close
// returns. Unlike waitYield it does not unwind Run: the execution has finished already
// (terminated) or is being thrown away.
// It reports whether the goroutine exited.
func (x *Execution) waitUnwind() bool {
	if x.yieldTimeout <= 0 {
		<-x.yield
		return true
	}
	t := time.NewTimer(x.yieldTimeout)
	defer t.Stop()
	select {
	case <-x.yield:
		return true
	case <-t.C:
		x.stuck = true
		close(x.abandoned)
		x.unwindErr = &DeadlockError{Name: x.c.name, InstanceID: x.c.instanceID, Timeout: x.yieldTimeout, Unwinding: true}
		return false
	}
}

// recoverDeadlock, deferred by Run, turns the panic of waitYield into Run's error. The panic
// unwinds only the caller's goroutine (the orchestrator's is the one stuck), from wherever in
// apply the hand-off happened.
func recoverDeadlock(err *error) {
	if r := recover(); r != nil {
		d, ok := r.(*DeadlockError)
		if !ok {
			panic(r)
		}
		*err = d
	}
}

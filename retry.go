package reprise

import (
	"time"

	"github.com/reprise-dev/reprise/internal/replay"
)

// RetryPolicy retries a failed activity or sub-orchestration. The waits between attempts are
// durable timers, visible in the history, so retries survive restarts.
//
// The wait before attempt n+1 is FirstInterval × BackoffCoefficient^(n-1), capped at MaxInterval.
// Retrying stops after MaxAttempts attempts, once Timeout has passed since the first attempt, when
// Handle returns false, or when the failure is non-retriable (Error.NonRetriable).
type RetryPolicy struct {
	FirstInterval      time.Duration    // required, > 0
	BackoffCoefficient float64          // default 1
	MaxInterval        time.Duration    // 0 means no cap
	MaxAttempts        int              // attempts in all, including the first; required, ≥ 1
	Timeout            time.Duration    // 0 means no limit
	Handle             func(error) bool // nil means retry every failure; gets a *TaskFailedError
}

func (p *RetryPolicy) internal() *replay.RetryPolicy {
	if p == nil {
		return nil
	}
	rp := &replay.RetryPolicy{
		FirstInterval: max(p.FirstInterval, time.Millisecond),
		Backoff:       p.BackoffCoefficient,
		MaxInterval:   p.MaxInterval,
		MaxAttempts:   max(p.MaxAttempts, 1),
		Timeout:       p.Timeout,
	}
	if h := p.Handle; h != nil {
		rp.Handle = func(err error) bool { return h(publicError(err)) }
	}
	return rp
}

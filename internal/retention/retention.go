// Package retention purges finished orchestration instances once they are older than the
// retention of their status: the background loop behind reprise.WithRetention and the
// extensions.durableTask.retention section of host.json.
//
// The age of a finished instance is the time since it finished (its UpdatedAt), as in the
// Durable Task Scheduler's autopurge, not since it was created. Each status has its own
// retention (Policy); a status without one is never purged, nor are instances that are still
// active, nor entities, whatever their age: the loop only calls store.Store.PurgeInstances with
// one terminal status, an updated-before bound and a limit, and stores never purge entities or
// active instances. A sub-orchestration is an instance like any other: it is purged by its own
// status and age, not with its parent.
//
// The loop never competes with the hot path for long: a batch purges at most BatchSize
// instances (one short transaction per status on SQLite; chunks that skip the rows commits hold
// on PostgreSQL), and after a full batch it pauses at least Pause, and at least as long as the
// batch took, so that purging takes at most about half of one writer's time however large the
// backlog; once a batch finds less than a full batch to purge, it looks again after Interval.
// Several hosts of one task hub may run it at once: a store deletes and counts each instance
// once, whoever asks, so nothing depends on one host running it.
//
// Counting: Purger.Purged reports the instances purged so far by status, and Options.OnPurge is
// called after each batch that purged any; either serves a metric (instances purged by
// retention, by status) without this package knowing of metrics.
package retention

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reprise-dev/reprise/store"
)

// Policy is how long finished instances of each terminal status are kept after they finished.
// Zero keeps them for ever.
type Policy struct {
	Completed, Failed, Terminated, Canceled time.Duration
}

// Age returns the retention of a status: 0 (kept for ever) for one that is not terminal.
func (p Policy) Age(s store.Status) time.Duration {
	switch s {
	case store.StatusCompleted:
		return p.Completed
	case store.StatusFailed:
		return p.Failed
	case store.StatusTerminated:
		return p.Terminated
	case store.StatusCanceled:
		return p.Canceled
	}
	return 0
}

// Enabled reports whether the policy purges anything.
func (p Policy) Enabled() bool {
	for _, s := range statusIndex {
		if p.Age(s) > 0 {
			return true
		}
	}
	return false
}

// Defaults of Options.
const (
	DefaultBatchSize = 100
	DefaultPause     = 100 * time.Millisecond
	DefaultInterval  = time.Minute
)

// Options configure a Purger. Zero values take the defaults.
type Options struct {
	Store  store.Store
	Policy Policy
	// BatchSize bounds the instances one batch purges, all statuses together (default 100).
	BatchSize int
	// Pause is the least time between a full batch and the next (default 100ms); the loop also
	// waits at least as long as the batch took.
	Pause time.Duration
	// Interval is how long the loop waits after a batch that was not full (default 1m): how late
	// an instance may be purged past its age, once the backlog is gone.
	Interval time.Duration
	Logger   *slog.Logger // default: discards
	// Now is the clock the ages are measured with (default time.Now).
	Now func() time.Time
	// OnPurge, when set, is called after each batch with the instances it purged of a status
	// (n > 0), from the loop's goroutine.
	OnPurge func(status store.Status, n int)
}

// Purger runs the retention loop of one store.
type Purger struct {
	opts   Options
	log    *slog.Logger
	purged [len(statusIndex)]atomic.Int64
	next   atomic.Uint32 // the status the next batch serves first, so that no status starves the others

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// statusIndex is the statuses a Policy can purge, numbered for the counters, in the order a
// batch serves them.
var statusIndex = [...]store.Status{store.StatusCompleted, store.StatusFailed, store.StatusTerminated, store.StatusCanceled}

// New returns a Purger; Start runs its loop.
func New(o Options) *Purger {
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.Pause <= 0 {
		o.Pause = DefaultPause
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Purger{opts: o, log: log}
}

// Purged returns the number of instances of the status that this Purger purged.
func (p *Purger) Purged(s store.Status) int64 {
	for i, st := range statusIndex {
		if st == s {
			return p.purged[i].Load()
		}
	}
	return 0
}

// Batch purges at most BatchSize instances that are older than their status's retention, and
// returns how many it purged. It serves the statuses in turn, starting with a different one each
// call, each with what the previous ones left of the batch.
func (p *Purger) Batch(ctx context.Context) (int, error) {
	now := p.opts.Now()
	total := 0
	start := int(p.next.Add(1)-1) % len(statusIndex)
	for k := range statusIndex {
		i := (start + k) % len(statusIndex)
		status := statusIndex[i]
		age := p.opts.Policy.Age(status)
		left := p.opts.BatchSize - total
		if age <= 0 || left <= 0 {
			continue
		}
		n, err := p.opts.Store.PurgeInstances(ctx, store.PurgeFilter{
			Statuses:      []store.Status{status},
			UpdatedBefore: now.Add(-age),
			Limit:         left,
		})
		if n > 0 {
			total += n
			p.purged[i].Add(int64(n))
			if p.opts.OnPurge != nil {
				p.opts.OnPurge(status, n)
			}
		}
		if err != nil {
			return total, fmt.Errorf("retention: purge %s instances that finished more than %v ago: %w", status, age, err)
		}
	}
	return total, nil
}

// Start runs the loop in a goroutine until Stop. It does nothing when the policy purges nothing.
func (p *Purger) Start() {
	if !p.opts.Policy.Enabled() {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.done = cancel, make(chan struct{})
	go p.run(ctx, p.done)
}

// Stop ends the loop, cancelling a batch in flight, and waits for it to return (or ctx to end).
func (p *Purger) Stop(ctx context.Context) error {
	p.mu.Lock()
	cancel, done := p.cancel, p.done
	p.mu.Unlock()
	if done == nil {
		return nil
	}
	cancel()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *Purger) run(ctx context.Context, done chan struct{}) {
	defer close(done)
	// The first batch waits a pause: a host that starts has its own work to pick up first.
	wait := p.opts.Pause
	failing := false
	for {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		began := time.Now()
		n, err := p.Batch(ctx)
		took := time.Since(began)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			if !failing { // once per run of failures, not once a minute
				p.log.Warn("retention: a purge batch failed; trying again later", "error", err, "retryIn", p.opts.Interval)
			}
			failing = true
			wait = p.opts.Interval
			continue
		}
		if failing {
			p.log.Info("retention: purging works again")
			failing = false
		}
		if n > 0 {
			p.log.Debug("retention: purged finished instances", "count", n, "took", took)
		}
		wait = p.opts.Interval
		if n >= p.opts.BatchSize {
			wait = max(p.opts.Pause, took)
		}
	}
}

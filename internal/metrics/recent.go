package metrics

import (
	"context"
	"sync"
	"time"
)

// Sample is one point of the dashboard's chart: what finished in the interval that ended at At,
// and the backlog at At.
type Sample struct {
	At        time.Time `json:"at"`
	Completed int64     `json:"completed"` // orchestrations finished in a status other than Failed
	Failed    int64     `json:"failed"`    // orchestrations, activities and entity operations that failed
	Backlog   int64     `json:"backlog"`   // work waiting, of every kind (-1 when the store could not say)
}

// Recent keeps the last samples of the running totals and of the backlog, taken every interval,
// for the dashboard: the same numbers as the instruments, without reading them back through an
// exporter.
type Recent struct {
	m        *Metrics
	read     func(ctx context.Context) (Backlog, error)
	interval time.Duration

	mu       sync.Mutex
	ring     []Sample
	next     int // where the next sample goes
	full     bool
	last     Totals
	stop     chan struct{}
	stopped  chan struct{}
	stopOnce sync.Once
}

// StartRecent samples every interval and keeps the last size samples, until Stop.
func (m *Metrics) StartRecent(interval time.Duration, size int, read func(ctx context.Context) (Backlog, error)) *Recent {
	r := &Recent{m: m, read: read, interval: interval, ring: make([]Sample, size), last: m.Totals(),
		stop: make(chan struct{}), stopped: make(chan struct{})}
	go r.loop()
	return r
}

func (r *Recent) loop() {
	defer close(r.stopped)
	r.sample(time.Now()) // a first point at once, so that a chart has something to show
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case now := <-t.C:
			r.sample(now)
		}
	}
}

func (r *Recent) sample(now time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), r.interval)
	b, err := r.read(ctx)
	cancel()
	backlog := int64(b.Orchestration + b.Activity + b.Entity)
	if err != nil {
		backlog = -1
	}
	t := r.m.Totals()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ring[r.next] = Sample{At: now.UTC().Truncate(time.Millisecond), Completed: t.Completions - r.last.Completions,
		Failed: t.Failures - r.last.Failures, Backlog: backlog}
	r.last = t
	r.next = (r.next + 1) % len(r.ring)
	r.full = r.full || r.next == 0
}

// Interval is the time between samples.
func (r *Recent) Interval() time.Duration { return r.interval }

// Samples returns the samples kept, oldest first.
func (r *Recent) Samples() []Sample {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.full {
		return append([]Sample(nil), r.ring[:r.next]...)
	}
	return append(append([]Sample(nil), r.ring[r.next:]...), r.ring[:r.next]...)
}

// Stop ends the sampling and waits for it. Calling it again does nothing.
func (r *Recent) Stop() {
	r.stopOnce.Do(func() { close(r.stop) })
	<-r.stopped
}

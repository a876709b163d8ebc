package storetest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reprise-dev/reprise/store"
)

// HotPath is the stores' shared benchmark body: it drives s the way the engine runs a 3-activity
// sequence, per orchestration 1 create, 4 claims + 4 episode commits and 3 activity claims + 3
// completions, with many orchestrations in flight so that group commit can batch. One op (of b.N)
// is one orchestration run to completion. It reports orch/s and returns how many orchestrations
// completed, so a store's benchmark can add figures of its own (CPU per orchestration, say).
func HotPath(b *testing.B, s store.Store) int64 {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const (
		activities = 3
		claimMax   = 64
		workers    = 64 // concurrent commits/completions in flight, like the engine's pools
		lease      = time.Minute
	)
	n := b.N
	var completed atomic.Int64
	allDone := make(chan struct{})
	fail := func(err error) {
		b.Error(err)
		cancel()
	}
	payload := []byte(`{"some":"event payload of a realistic size, a few dozen bytes"}`)

	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup

	// Starters.
	for g := range 8 {
		wg.Go(func() {
			for i := g; i < n; i += 8 {
				id := fmt.Sprintf("bench-%08d", i)
				inst := store.Instance{ID: id, Name: "seq", ExecutionID: "e", Status: store.StatusPending, Input: payload}
				if err := s.CreateInstance(ctx, inst, store.Message{Data: payload}, store.ReuseIfFinished); err != nil {
					fail(err)
					return
				}
			}
		})
	}

	episodes := make(chan store.OrchestrationWork, claimMax)
	tasks := make(chan store.ActivityWork, claimMax)
	// Orchestration dispatcher: claim in batches, hand out to a pool that commits concurrently.
	wg.Go(func() {
		defer close(episodes)
		sig := s.WorkSignal(store.OrchestrationWorkKind)
		for ctx.Err() == nil {
			work, err := s.ClaimOrchestrations(ctx, "bench", store.Names{"seq"}, claimMax, lease)
			if err != nil {
				if ctx.Err() == nil {
					fail(err)
				}
				return
			}
			for _, w := range work {
				episodes <- w
			}
			if len(work) == 0 {
				select {
				case <-sig:
				case <-time.After(10 * time.Millisecond):
				case <-ctx.Done():
				}
			}
		}
	})
	wg.Go(func() {
		defer close(tasks)
		sig := s.WorkSignal(store.ActivityWorkKind)
		for ctx.Err() == nil {
			work, err := s.ClaimActivities(ctx, "bench", store.Names{"say_hello"}, claimMax, lease)
			if err != nil {
				if ctx.Err() == nil {
					fail(err)
				}
				return
			}
			for _, w := range work {
				tasks <- w
			}
			if len(work) == 0 {
				select {
				case <-sig:
				case <-time.After(10 * time.Millisecond):
				case <-ctx.Done():
				}
			}
		}
	})
	for range workers {
		wg.Go(func() {
			for w := range episodes {
				step := w.Instance.HistoryLen // one chunk per episode
				e := store.Episode{Lease: w.Lease, Instance: w.Instance, History: [][]byte{payload}}
				for _, m := range w.Messages {
					e.Consumed = append(e.Consumed, m.ID)
				}
				e.Instance.Status = store.StatusRunning
				if step < activities {
					e.Tasks = []store.Task{{InstanceID: w.Instance.ID, ExecutionID: "e", Name: "say_hello", Data: payload}}
				} else {
					e.Instance.Status = store.StatusCompleted
					e.Instance.Output = payload
				}
				if err := s.CommitEpisode(ctx, e); err != nil {
					if ctx.Err() == nil {
						fail(err)
					}
					continue
				}
				if step >= activities && completed.Add(1) == int64(n) {
					close(allDone)
				}
			}
		})
		wg.Go(func() {
			for w := range tasks {
				res := store.Message{InstanceID: w.Task.InstanceID, ExecutionID: "e", Data: payload}
				if err := s.CompleteActivity(ctx, w.Task.ID, w.Lease, res); err != nil && ctx.Err() == nil {
					fail(err)
				}
			}
		})
	}

	select {
	case <-allDone:
	case <-ctx.Done():
	case <-time.After(5 * time.Minute):
		b.Error("timed out")
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cancel()
	wg.Wait()
	b.ReportMetric(float64(completed.Load())/elapsed.Seconds(), "orch/s")
	return completed.Load()
}

package postgres

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/reprise-dev/reprise/internal/pgtest"
	"github.com/reprise-dev/reprise/store"
)

// BenchmarkHotPath drives the store the way the engine runs a 3-activity sequence: per
// orchestration 1 create, 4 claims + 4 episode commits and 3 activity claims + 3 completions,
// with many orchestrations in flight so that group commit can batch. One op is one orchestration
// run to completion; orch/s is the figure to compare. The default configuration is group commit;
// "nogroup" is one transaction per operation over as many connections, for comparison:
//
//	go test ./store/postgres -run '^$' -bench HotPath -benchtime 5000x -count 3
func BenchmarkHotPath(b *testing.B) {
	for _, c := range []struct {
		name string
		opts Options
	}{
		{"group", Options{}},
		{"group-writers1", Options{Writers: 1}},
		{"group-writers4", Options{Writers: 4}},
		{"nogroup", Options{MaxBatch: 1, Writers: 16, MaxConns: 24}},
	} {
		b.Run(c.name, func(b *testing.B) { benchHotPath(b, c.opts) })
	}
}

func benchHotPath(b *testing.B, opts Options) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := openStore(b, pgtest.DSN(b), opts)

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

	cpu0 := cpuTime(b, s)
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
			work, err := s.ClaimOrchestrations(ctx, "bench", claimMax, lease)
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
			work, err := s.ClaimActivities(ctx, "bench", claimMax, lease)
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
	cpu1 := cpuTime(b, s)
	b.StopTimer()
	cancel()
	wg.Wait()
	b.ReportMetric(float64(completed.Load())/elapsed.Seconds(), "orch/s")
	if cpu0.ok && cpu1.ok && completed.Load() > 0 {
		// CPU per orchestration is steadier than throughput on a shared machine.
		n := float64(completed.Load())
		b.ReportMetric(float64(cpu1.client-cpu0.client)/float64(time.Millisecond)/n, "client-cpu-ms/orch")
		b.ReportMetric(float64(cpu1.server-cpu0.server)/float64(time.Millisecond)/n, "server-cpu-ms/orch")
	}
}

type cpuSample struct {
	client, server time.Duration
	ok             bool
}

// cpuTime samples the CPU time used so far by this process and by the PostgreSQL backends
// connected to the store's database, when the server runs on this machine (Linux /proc).
func cpuTime(b *testing.B, s *Store) cpuSample {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return cpuSample{}
	}
	out := cpuSample{client: time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), ok: true}
	rows, err := s.pool.Query(context.Background(), `SELECT pid FROM pg_stat_activity WHERE datname = current_database()`)
	if err != nil {
		b.Logf("no server CPU figures: %v", err)
		return cpuSample{}
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return cpuSample{}
	}
	for _, pid := range pids {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return cpuSample{} // the server is elsewhere, or not ours to read
		}
		// Fields after the command name (which may contain spaces): utime and stime are the
		// 12th and 13th, in clock ticks (100 per second on Linux).
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(f) < 13 {
			return cpuSample{}
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		out.server += time.Duration(ut+st) * 10 * time.Millisecond
	}
	return out
}

package retention

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/reprise-dev/reprise/internal/pgtest"
	"github.com/reprise-dev/reprise/store"
	"github.com/reprise-dev/reprise/store/postgres"
	"github.com/reprise-dev/reprise/store/sqlite"
)

const day = 24 * time.Hour

// opener opens a store of the task hub "retention"; called twice in one test it opens two
// handles on one hub, as two hosts would.
type opener func(t *testing.T) store.Store

// eachStore runs the test on SQLite and on PostgreSQL (skipped when no server is reachable).
func eachStore(t *testing.T, test func(t *testing.T, open opener)) {
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "r.db")
		test(t, func(t *testing.T) store.Store {
			st, err := sqlite.Open(context.Background(), path, sqlite.Options{Hub: "retention"})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = st.Close() })
			return st
		})
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := pgtest.DSN(t)
		test(t, func(t *testing.T) store.Store {
			st, err := postgres.Open(context.Background(), dsn, postgres.Options{Hub: "retention"})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = st.Close() })
			return st
		})
	})
}

// create stores an instance of the status that finished (was last updated) at the time given.
func create(t *testing.T, st store.Store, id, parent string, status store.Status, finished time.Time) {
	t.Helper()
	inst := store.Instance{ID: id, Name: "orch", ExecutionID: "e-" + id, ParentID: parent, Status: status,
		CreatedAt: finished.Add(-time.Minute), UpdatedAt: finished}
	err := st.CreateInstance(context.Background(), inst, store.Message{InstanceID: id, Data: []byte("start")}, store.ReuseNever)
	if err != nil {
		t.Fatalf("CreateInstance(%q): %v", id, err)
	}
}

func remaining(t *testing.T, st store.Store) []string {
	t.Helper()
	var out []string
	for _, kind := range []store.Kind{store.KindOrchestration, store.KindEntity} {
		q := store.Query{Kind: kind, PageSize: 1000}
		for {
			page, next, err := st.ListInstances(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			for _, in := range page {
				out = append(out, in.ID)
			}
			if next == "" {
				break
			}
			q.ContinuationToken = next
		}
	}
	slices.Sort(out)
	return out
}

// drain runs batches until one purges nothing, and returns what each purged.
func drain(t *testing.T, p *Purger) []int {
	t.Helper()
	var ns []int
	for {
		n, err := p.Batch(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return ns
		}
		ns = append(ns, n)
		if len(ns) > 1000 {
			t.Fatalf("batches never end: %v…", ns[:10])
		}
	}
}

// TestPolicyPurgesExactly: on a clock the test moves, each status is purged once it is older than
// its own retention, measured from when it finished; a status without retention, active
// instances and entities are kept however old; a sub-orchestration goes by its own status and age.
func TestPolicyPurgesExactly(t *testing.T) {
	eachStore(t, func(t *testing.T, open opener) {
		st := open(t)
		now := time.Now().Add(-500 * day).Truncate(time.Second) // the virtual clock
		ago := func(d time.Duration) time.Time { return now.Add(-d) }
		create(t, st, "completed-8d", "", store.StatusCompleted, ago(8*day))
		create(t, st, "completed-6d", "", store.StatusCompleted, ago(6*day))
		create(t, st, "failed-31d", "", store.StatusFailed, ago(31*day))
		create(t, st, "failed-8d", "", store.StatusFailed, ago(8*day))
		create(t, st, "terminated-2d", "", store.StatusTerminated, ago(2*day))
		create(t, st, "terminated-1h", "", store.StatusTerminated, ago(time.Hour))
		create(t, st, "canceled-400d", "", store.StatusCanceled, ago(400*day)) // no retention for Canceled
		create(t, st, "running-400d", "", store.StatusRunning, ago(400*day))
		create(t, st, "pending-400d", "", store.StatusPending, ago(400*day))
		create(t, st, "suspended-400d", "", store.StatusSuspended, ago(400*day))
		// A finished sub-orchestration of a running parent, and a young one of an old parent.
		create(t, st, "parent-running", "", store.StatusRunning, ago(9*day))
		create(t, st, "child-completed-9d", "parent-running", store.StatusCompleted, ago(9*day))
		create(t, st, "parent-completed-9d", "", store.StatusCompleted, ago(9*day))
		create(t, st, "child-failed-9d", "parent-completed-9d", store.StatusFailed, ago(9*day))
		// An entity: never purged (its status is Running, its kind entity).
		ent := store.EntityInstanceID("counter", "a")
		if err := st.SendEntityMessages(context.Background(), []store.Message{{InstanceID: ent, Data: []byte("op")}}); err != nil {
			t.Fatal(err)
		}

		var mu sync.Mutex
		hooked := map[store.Status]int{}
		p := New(Options{
			Store:  st,
			Policy: Policy{Completed: 7 * day, Failed: 30 * day, Terminated: day},
			Now:    func() time.Time { mu.Lock(); defer mu.Unlock(); return now },
			OnPurge: func(s store.Status, n int) {
				mu.Lock()
				hooked[s] += n
				mu.Unlock()
			},
		})
		drain(t, p)
		want := []string{"canceled-400d", "child-failed-9d", "completed-6d", "failed-8d", ent, "parent-running",
			"pending-400d", "running-400d", "suspended-400d", "terminated-1h"}
		slices.Sort(want)
		if got := remaining(t, st); !slices.Equal(got, want) {
			t.Fatalf("left after retention: %v\nwant %v", got, want)
		}
		wantCounts := map[store.Status]int{store.StatusCompleted: 3, store.StatusFailed: 1, store.StatusTerminated: 1}
		for _, s := range statusIndex {
			if got := p.Purged(s); got != int64(wantCounts[s]) {
				t.Errorf("Purged(%s) = %d, want %d", s, got, wantCounts[s])
			}
			if hooked[s] != wantCounts[s] {
				t.Errorf("OnPurge counted %d %s, want %d", hooked[s], s, wantCounts[s])
			}
		}

		// Two days later, the Completed one of 6 days and the Terminated one of an hour are old enough.
		mu.Lock()
		now = now.Add(2 * day)
		mu.Unlock()
		drain(t, p)
		want = slices.DeleteFunc(want, func(id string) bool { return id == "completed-6d" || id == "terminated-1h" })
		if got := remaining(t, st); !slices.Equal(got, want) {
			t.Fatalf("left two days later: %v\nwant %v", got, want)
		}
		if p.Purged(store.StatusCompleted) != 4 || p.Purged(store.StatusTerminated) != 2 {
			t.Fatalf("Purged after two days: Completed %d, Terminated %d; want 4, 2",
				p.Purged(store.StatusCompleted), p.Purged(store.StatusTerminated))
		}
	})
}

// TestBatchesAreBounded: a batch purges at most BatchSize instances, all statuses together, and
// the statuses take turns starting a batch.
func TestBatchesAreBounded(t *testing.T) {
	eachStore(t, func(t *testing.T, open opener) {
		st := open(t)
		old := time.Now().Add(-100 * day)
		for i := range 25 {
			create(t, st, fmt.Sprintf("c-%02d", i), "", store.StatusCompleted, old)
		}
		for i := range 8 {
			create(t, st, fmt.Sprintf("f-%02d", i), "", store.StatusFailed, old)
		}
		p := New(Options{Store: st, Policy: Policy{Completed: day, Failed: day}, BatchSize: 10})
		ns := drain(t, p)
		if !slices.Equal(ns, []int{10, 10, 10, 3}) {
			t.Fatalf("batches purged %v, want [10 10 10 3]", ns)
		}
		if p.Purged(store.StatusCompleted) != 25 || p.Purged(store.StatusFailed) != 8 {
			t.Fatalf("Purged: Completed %d, Failed %d; want 25, 8", p.Purged(store.StatusCompleted), p.Purged(store.StatusFailed))
		}
		if got := remaining(t, st); len(got) != 0 {
			t.Fatalf("left: %v", got)
		}
	})
	// The second batch starts with Failed: with 10 Completed and 10 Failed, batches of 10 take
	// all of one status each, not only Completed until it runs dry.
	t.Run("turns", func(t *testing.T) {
		st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "t.db"), sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		old := time.Now().Add(-100 * day)
		for i := range 20 {
			create(t, st, fmt.Sprintf("c-%02d", i), "", store.StatusCompleted, old)
			create(t, st, fmt.Sprintf("f-%02d", i), "", store.StatusFailed, old)
		}
		p := New(Options{Store: st, Policy: Policy{Completed: day, Failed: day}, BatchSize: 10})
		for i := range 2 {
			if n, err := p.Batch(context.Background()); n != 10 || err != nil {
				t.Fatalf("batch %d = %d, %v", i, n, err)
			}
		}
		if c, f := p.Purged(store.StatusCompleted), p.Purged(store.StatusFailed); c != 10 || f != 10 {
			t.Fatalf("after two batches: Completed %d, Failed %d purged; want 10 each", c, f)
		}
	})
}

// TestHostsPurgeAtOnce: purgers of two hosts on one task hub, batch after batch at the same time,
// purge every old instance once: what they count adds up to what there was.
func TestHostsPurgeAtOnce(t *testing.T) {
	eachStore(t, func(t *testing.T, open opener) {
		a, b := open(t), open(t)
		old := time.Now().Add(-100 * day)
		const n = 300
		for i := range n {
			create(t, a, fmt.Sprintf("c-%03d", i), "", store.StatusCompleted, old)
		}
		create(t, a, "young", "", store.StatusCompleted, time.Now())
		purgers := []*Purger{
			New(Options{Store: a, Policy: Policy{Completed: day}, BatchSize: 7}),
			New(Options{Store: b, Policy: Policy{Completed: day}, BatchSize: 7}),
		}
		var wg sync.WaitGroup
		errs := make([]error, len(purgers))
		for i, p := range purgers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					got, err := p.Batch(context.Background())
					if err != nil || got == 0 {
						errs[i] = err
						return
					}
				}
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		total := purgers[0].Purged(store.StatusCompleted) + purgers[1].Purged(store.StatusCompleted)
		if total != n {
			t.Fatalf("the hosts counted %d + %d purged, want %d in all", purgers[0].Purged(store.StatusCompleted),
				purgers[1].Purged(store.StatusCompleted), n)
		}
		if got := remaining(t, b); !slices.Equal(got, []string{"young"}) {
			t.Fatalf("left: %v, want [young]", got)
		}
	})
}

// TestLoopRunsAndStops: the loop purges on its own, batch after batch without waiting for the
// interval while batches are full, and Stop ends it.
func TestLoopRunsAndStops(t *testing.T) {
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "l.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	old := time.Now().Add(-100 * day)
	for i := range 30 {
		create(t, st, fmt.Sprintf("c-%02d", i), "", store.StatusCompleted, old)
	}
	purged := make(chan int, 100)
	p := New(Options{Store: st, Policy: Policy{Completed: day}, BatchSize: 10, Pause: time.Millisecond,
		Interval: time.Hour, // a loop that waited for it would never finish in time
		OnPurge:  func(_ store.Status, n int) { purged <- n }})
	p.Start()
	got := 0
	for got < 30 {
		select {
		case n := <-purged:
			got += n
		case <-time.After(30 * time.Second):
			t.Fatalf("the loop purged %d of 30 old instances", got)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if left := remaining(t, st); len(left) != 0 {
		t.Fatalf("left: %v", left)
	}
	if p.Purged(store.StatusCompleted) != 30 {
		t.Fatalf("Purged = %d, want 30", p.Purged(store.StatusCompleted))
	}
	// A policy without retention starts no loop; Stop returns at once.
	q := New(Options{Store: st})
	q.Start()
	if err := q.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}

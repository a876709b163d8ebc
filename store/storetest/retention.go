package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/reprise-dev/reprise/store"
)

// testPurgeFinishedBefore: PurgeInstances with an updated-before bound and a limit, as retention
// uses it: it purges the finished orchestrations of the statuses asked for that finished (and
// were created) before the bound, with their history, inbox and tasks, at most Limit a call; it
// never purges active instances, younger ones, other statuses or entities, however old.
func (s suite) testPurgeFinishedBefore(t *testing.T) {
	st := s.open(t)
	ctx := ctxOf(t)
	base := time.Now().Add(-1000 * time.Hour).Truncate(time.Millisecond)
	at := func(h int) time.Time { return base.Add(time.Duration(h) * time.Hour) }
	create := func(id string, status store.Status, created, updated time.Time) {
		t.Helper()
		inst := newInstance(id)
		inst.Status, inst.CreatedAt, inst.UpdatedAt = status, created, updated
		if err := st.CreateInstance(ctx, inst, startMessage(id), store.ReuseNever); err != nil {
			t.Fatalf("CreateInstance(%q): %v", id, err)
		}
	}
	bound := at(100)
	for i := range 5 {
		create(fmt.Sprintf("c-old-%d", i), store.StatusCompleted, at(1), at(10+i))
	}
	create("c-young", store.StatusCompleted, at(1), at(200))
	create("c-at-bound", store.StatusCompleted, at(1), bound) // exclusive: kept
	create("f-old", store.StatusFailed, at(1), at(10))
	create("t-old", store.StatusTerminated, at(1), at(10))
	create("x-old", store.StatusCanceled, at(1), at(10))
	create("r-old", store.StatusRunning, at(1), at(10))
	create("p-old", store.StatusPending, at(1), at(10))
	create("s-old", store.StatusSuspended, at(1), at(10))
	// Created after the bound, "finished" before it (only a clock skew can do that): kept.
	create("c-skewed", store.StatusCompleted, at(150), at(10))

	// An instance finished by an episode, with history, a message and a task left: purged with them.
	create("h-old", store.StatusPending, at(1), at(1))
	populate(t, st, "h-old", store.StatusRunning)
	w := claimID(t, st, "n", "h-old")
	e := store.Episode{Lease: w.Lease, Instance: w.Instance} // the message stays in the inbox
	e.Instance.Status = store.StatusCompleted
	e.Instance.UpdatedAt = at(20)
	mustCommit(t, st, e)
	if got := mustGet(t, st, "h-old"); !got.UpdatedAt.Equal(at(20)) {
		t.Fatalf("test setup: h-old UpdatedAt = %v, want %v", got.UpdatedAt, at(20))
	}

	// An old entity, with state; as old as the oldest finished instance.
	ent := store.EntityInstanceID("counter", "k")
	mustSendEntities(t, st, signal(ent, "op"))
	eb := consumeAll(claimEntity(t, st, "n", ent))
	eb.Instance.Output = []byte(`1`)
	eb.Instance.UpdatedAt = at(1)
	mustCommit(t, st, eb)

	completed := []store.Status{store.StatusCompleted}
	// A limit: at most 2 a call, all of them old Completed ones.
	remaining := map[string]bool{"c-old-0": true, "c-old-1": true, "c-old-2": true, "c-old-3": true, "c-old-4": true, "h-old": true}
	for call := 0; len(remaining) > 0; call++ {
		if call > 3 {
			t.Fatalf("after %d calls of limit 2, still not purged: %v", call, remaining)
		}
		n, err := st.PurgeInstances(ctx, store.PurgeFilter{Statuses: completed, UpdatedBefore: bound, Limit: 2})
		if err != nil || n != 2 {
			t.Fatalf("PurgeInstances(Completed, before, limit 2) call %d = %d, %v; want 2 (%d left)", call, n, err, len(remaining))
		}
		gone := 0
		for id := range remaining {
			if _, err := st.GetInstance(ctx, id); err == nil {
				continue
			}
			delete(remaining, id)
			gone++
		}
		if gone != 2 {
			t.Fatalf("call %d: %d of the old Completed instances are gone, want 2", call, gone)
		}
	}
	if n, err := st.PurgeInstances(ctx, store.PurgeFilter{Statuses: completed, UpdatedBefore: bound, Limit: 2}); err != nil || n != 0 {
		t.Fatalf("PurgeInstances with nothing old left = %d, %v; want 0", n, err)
	}
	if h, err := st.History(ctx, "h-old"); err == nil && len(h) != 0 {
		t.Fatalf("history survived the purge: %d chunks", len(h))
	}
	if tasks := claimTasks(t, st, "n", 10, longLease); len(tasks) != 0 {
		t.Fatalf("%d activity tasks survived the purge", len(tasks))
	}
	mustCreate(t, st, "h-old")
	if w := claimID(t, st, "n", "h-old"); len(w.Messages) != 1 || string(w.Messages[0].Data) != "started:h-old" {
		t.Fatalf("inbox after purge and create = %+v, want only the new start message", w.Messages)
	}

	// Every terminal status at once: the other old finished ones (f-old, t-old, x-old), one with
	// a limit of 1, then the other two without a limit.
	n, err := st.PurgeInstances(ctx, store.PurgeFilter{UpdatedBefore: bound, Limit: 1})
	if err != nil || n != 1 {
		t.Fatalf("PurgeInstances(before, limit 1) = %d, %v; want 1", n, err)
	}
	n, err = st.PurgeInstances(ctx, store.PurgeFilter{UpdatedBefore: bound})
	if err != nil || n != 2 {
		t.Fatalf("PurgeInstances(before) = %d, %v; want the 2 left of f-old, t-old, x-old", n, err)
	}
	all, _ := listAll(t, st, store.Query{})
	got := ids(all)
	slices.Sort(got)
	want := []string{"c-at-bound", "c-skewed", "c-young", "h-old", "p-old", "r-old", "s-old"}
	if !slices.Equal(got, want) {
		t.Fatalf("left after the purges: %v, want %v", got, want)
	}
	if e := mustGet(t, st, ent); e.Kind != store.KindEntity || string(e.Output) != "1" {
		t.Fatalf("entity after the purges = %+v", e)
	}

	wantErr(t, "PurgeInstances(negative limit)", func() error {
		_, err := st.PurgeInstances(ctx, store.PurgeFilter{Limit: -1})
		return err
	}(), store.ErrInvalidArgument)
	wantErr(t, "PurgeInstances(bound out of range)", func() error {
		_, err := st.PurgeInstances(ctx, store.PurgeFilter{UpdatedBefore: store.MaxTime().Add(time.Hour)})
		return err
	}(), store.ErrInvalidArgument)
}

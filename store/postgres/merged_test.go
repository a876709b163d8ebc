package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/reprise-dev/reprise/internal/pgtest"
	"github.com/reprise-dev/reprise/store"
	"github.com/reprise-dev/reprise/store/storetest"
)

// Merged completions (Episode.Completes) where the conformance suite cannot reach: several
// hosts, the row locks between them, and the epochs of the tasks they lease.

// leaseFirst creates instance id on s, claims it as owner and commits its first episode with
// the tasks names, the first leased to owner and the others unleased. It returns the leased
// task and the instance as stored after the commit.
func leaseFirst(t *testing.T, s *Store, owner, id string, names ...string) (store.ActivityWork, store.Instance) {
	t.Helper()
	create(t, s, id)
	w := claimInstance(t, s, owner, id)
	e := store.Episode{Lease: w.Lease, Instance: w.Instance, History: [][]byte{[]byte("first")}}
	for _, m := range w.Messages {
		e.Consumed = append(e.Consumed, m.ID)
	}
	e.Instance.Status = store.StatusRunning
	for _, n := range append([]string{"t"}, names...) {
		e.Tasks = append(e.Tasks, store.Task{InstanceID: id, ExecutionID: w.Instance.ExecutionID, Name: n, Data: []byte("in:" + n)})
	}
	e.LeaseTasks = &store.TaskLease{For: time.Minute, Tasks: []int{0}}
	if err := s.CommitEpisode(t.Context(), e); err != nil {
		t.Fatalf("first episode of %s: %v", id, err)
	}
	if len(e.LeaseTasks.Leased) != 1 {
		t.Fatalf("first episode of %s leased %d tasks, want 1", id, len(e.LeaseTasks.Leased))
	}
	inst, err := s.GetInstance(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return e.LeaseTasks.Leased[0], inst
}

// claimInstance claims as owner and returns the work of instance id (others it takes are put
// back).
func claimInstance(t *testing.T, s *Store, owner, id string) store.OrchestrationWork {
	t.Helper()
	work, err := s.ClaimOrchestrations(t.Context(), owner, store.Names{"o"}, 100, time.Minute)
	if err != nil {
		t.Fatalf("ClaimOrchestrations(%s): %v", owner, err)
	}
	var found *store.OrchestrationWork
	for _, w := range work {
		if w.Instance.ID == id {
			found = &w
			continue
		}
		if err := s.CommitEpisode(t.Context(), store.Episode{Lease: w.Lease, Instance: w.Instance}); err != nil {
			t.Fatal(err)
		}
	}
	if found == nil {
		t.Fatalf("%s did not claim %s", owner, id)
	}
	return *found
}

// mergedStep is the episode of aw's result for inst: it appends chunk and schedules a task "t"
// leased to the committer.
func mergedStep(aw store.ActivityWork, inst store.Instance, chunk string) store.Episode {
	return store.Episode{
		Instance:   inst,
		History:    [][]byte{[]byte(chunk)},
		Tasks:      []store.Task{{InstanceID: inst.ID, ExecutionID: inst.ExecutionID, Name: "t", Data: []byte("in:" + chunk)}},
		LeaseTasks: &store.TaskLease{For: time.Minute, Tasks: []int{0}},
		Completes:  &store.Completion{TaskID: aw.Task.ID, Lease: aw.Lease, ExecutionID: inst.ExecutionID, HistoryLen: inst.HistoryLen},
	}
}

func historyOf(t *testing.T, s *Store, id string) []string {
	t.Helper()
	h, err := s.History(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(h))
	for i, c := range h {
		out[i] = string(c)
	}
	return out
}

func claimTasks(t *testing.T, s *Store, owner string) []store.ActivityWork {
	t.Helper()
	w, err := s.ClaimActivities(t.Context(), owner, store.Names{"t", "u"}, 10, time.Minute)
	if err != nil {
		t.Fatalf("ClaimActivities(%s): %v", owner, err)
	}
	return w
}

// TestMergedCompletionsRace commits, many times, the merged completions of two tasks of one
// instance at once, computed on the same execution: on two hosts (two stores, two
// transactions) and on one (one store, whose writers may group them). Exactly one commits; the
// other is refused with nothing applied, and its task is still its host's to complete.
func TestMergedCompletionsRace(t *testing.T) {
	dsn := pgtest.DSN(t)
	hub := randomHub()
	a, b := openStore(t, dsn, Options{Hub: hub}), openStore(t, dsn, Options{Hub: hub})
	ctx := t.Context()
	for i := range 30 {
		id := fmt.Sprintf("race-%d", i)
		first, inst := leaseFirst(t, a, "A", id, "u")
		hosts := [2]*Store{a, b}
		owner := "B"
		if i%2 == 1 {
			// Both on one store, under an owner of its own: an owner name is one host's, and
			// a store that claims under another store's owner starts a new epoch for it, which
			// ends the leases that owner's earlier merged completions took on the other store.
			hosts[1], owner = a, "A2"
		}
		second := claimTasks(t, hosts[1], owner)
		if len(second) != 1 {
			t.Fatalf("round %d: B claimed %d tasks, want the unleased one", i, len(second))
		}
		tasks := [2]store.ActivityWork{first, second[0]}
		var errs [2]error
		var wg sync.WaitGroup
		start := make(chan struct{})
		for k := range 2 {
			wg.Go(func() {
				<-start
				errs[k] = hosts[k].CommitEpisode(ctx, mergedStep(tasks[k], inst, fmt.Sprintf("result %d", k)))
			})
		}
		close(start)
		wg.Wait()
		won := -1
		for k, err := range errs {
			switch {
			case err == nil && won < 0:
				won = k
			case err == nil:
				t.Fatalf("round %d: both merged completions of one execution committed", i)
			case !errors.Is(err, store.ErrInstanceBusy):
				t.Fatalf("round %d: merged completion %d: %v, want success or ErrInstanceBusy", i, k, err)
			}
		}
		if won < 0 {
			t.Fatalf("round %d: neither merged completion committed (%v; %v)", i, errs[0], errs[1])
		}
		if h := historyOf(t, a, id); len(h) != inst.HistoryLen+1 || h[len(h)-1] != fmt.Sprintf("result %d", won) {
			t.Fatalf("round %d: history %q, want one chunk more, the winner's (%d)", i, h, won)
		}
		lost := tasks[1-won]
		if err := hosts[1-won].CompleteActivity(ctx, lost.Task.ID, lost.Lease, store.Message{InstanceID: id, Data: []byte("r")}); err != nil {
			t.Fatalf("round %d: CompleteActivity of the refused completion's task: %v", i, err)
		}
	}
}

// TestMergedCompletionAfterClaimInItsSnapshot stops a merged completion after its statement's
// snapshot was taken (it waits for a lock on its task), and meanwhile another host, with an
// owner new to the hub (whose first claim starts its epoch), sends the instance a message and
// claims it: neither the message nor the lease nor the epoch is in the completion's snapshot.
// The completion must see the claim all the same, and refuse.
func TestMergedCompletionAfterClaimInItsSnapshot(t *testing.T) {
	dsn := pgtest.DSN(t)
	hub := randomHub()
	a, b := openStore(t, dsn, Options{Hub: hub}), openStore(t, dsn, Options{Hub: hub})
	ctx := t.Context()
	aw, inst := leaseFirst(t, a, "A", "x")

	blocker, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Close(context.Background())
	tx, err := blocker.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck // a no-op after Rollback below
	if _, err := tx.Exec(ctx, `SELECT 1 FROM reprise.tasks WHERE id = $1 FOR UPDATE`, aw.Task.ID); err != nil {
		t.Fatal(err)
	}
	pid := blocker.PgConn().PID()

	done := make(chan error, 1)
	go func() { done <- a.CommitEpisode(ctx, mergedStep(aw, inst, "merged")) }()
	storetest.Eventually(t, "the merged completion to wait for its task's lock", func() bool {
		var waiting int
		err := blocker.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE $1::integer = ANY(pg_blocking_pids(pid))`, int(pid)).Scan(&waiting)
		if err != nil {
			t.Fatal(err)
		}
		return waiting == 1
	})

	if err := b.SendMessage(ctx, store.Message{InstanceID: "x", Data: []byte("event")}); err != nil {
		t.Fatal(err)
	}
	w := claimInstance(t, b, "fresh-owner", "x")
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	err = <-done
	if !errors.Is(err, store.ErrInstanceBusy) {
		t.Fatalf("merged completion while another host held the instance: %v, want ErrInstanceBusy", err)
	}

	// The claim is intact: its commit holds, and the task is still A's to complete.
	e := store.Episode{Lease: w.Lease, Instance: w.Instance, History: [][]byte{[]byte("claimed")}, Consumed: []int64{w.Messages[0].ID}}
	if err := b.CommitEpisode(ctx, e); err != nil {
		t.Fatalf("the claim's commit after the refused merged completion: %v", err)
	}
	if h := historyOf(t, a, "x"); len(h) != inst.HistoryLen+1 || h[len(h)-1] != "claimed" {
		t.Fatalf("history %q, want the claim's chunk alone after the first", h)
	}
	if err := a.CompleteActivity(ctx, aw.Task.ID, aw.Lease, store.Message{InstanceID: "x", Data: []byte("r")}); err != nil {
		t.Fatalf("CompleteActivity after the refused merged completion: %v", err)
	}
}

// TestMergedCompletionRacesClaim runs, many times, a merged completion on one host against a
// message sent to the instance and a claim of it on another. Whatever the order, the instance
// is held by one at a time: a claim that follows a merged completion sees its history, and the
// claim's commit holds.
func TestMergedCompletionRacesClaim(t *testing.T) {
	dsn := pgtest.DSN(t)
	hub := randomHub()
	a, b := openStore(t, dsn, Options{Hub: hub}), openStore(t, dsn, Options{Hub: hub})
	ctx := t.Context()
	for i := range 30 {
		id := fmt.Sprintf("race-%d", i)
		aw, inst := leaseFirst(t, a, "A", id)
		var mergedErr, claimErr error
		var claimed []store.OrchestrationWork
		var wg sync.WaitGroup
		start := make(chan struct{})
		wg.Go(func() {
			<-start
			mergedErr = a.CommitEpisode(ctx, mergedStep(aw, inst, "merged"))
		})
		wg.Go(func() {
			<-start
			if claimErr = b.SendMessage(ctx, store.Message{InstanceID: id, Data: []byte("event")}); claimErr == nil {
				claimed, claimErr = b.ClaimOrchestrations(ctx, "B", store.Names{"o"}, 10, time.Minute)
			}
		})
		close(start)
		wg.Wait()
		if claimErr != nil {
			t.Fatalf("round %d: the other host's message and claim: %v", i, claimErr)
		}
		want := inst.HistoryLen
		busy := errors.Is(mergedErr, store.ErrInstanceBusy)
		switch {
		case mergedErr == nil:
			want++
		case !busy:
			t.Fatalf("round %d: merged completion: %v, want success or ErrInstanceBusy", i, mergedErr)
		}
		if len(claimed) == 0 {
			// The claim came while the merged completion held the row: the event waits.
			claimed = claim(t, b, "B", time.Minute)
		}
		if len(claimed) != 1 {
			t.Fatalf("round %d: B claimed %d instances, want %s", i, len(claimed), id)
		}
		w := claimed[0]
		if w.Instance.HistoryLen != want {
			t.Fatalf("round %d: B claimed %s at history length %d while the merged completion (%v) makes it %d",
				i, id, w.Instance.HistoryLen, mergedErr, want)
		}
		e := store.Episode{Lease: w.Lease, Instance: w.Instance, History: [][]byte{[]byte("claimed")}}
		for _, m := range w.Messages {
			e.Consumed = append(e.Consumed, m.ID)
		}
		if err := b.CommitEpisode(ctx, e); err != nil {
			t.Fatalf("round %d: B's commit (merged completion: %v): %v", i, mergedErr, err)
		}
		if h := historyOf(t, a, id); len(h) != want+1 {
			t.Fatalf("round %d: history %q, want %d chunks", i, h, want+1)
		}
		if busy {
			// The refused completion's task is still A's; its result is then an event like
			// any other, which B takes, so that no message is left for the next round.
			if err := a.CompleteActivity(ctx, aw.Task.ID, aw.Lease, store.Message{InstanceID: id, Data: []byte("r")}); err != nil {
				t.Fatalf("round %d: CompleteActivity after the refused merged completion: %v", i, err)
			}
			w := claimInstance(t, b, "B", id)
			if err := b.CommitEpisode(ctx, store.Episode{Lease: w.Lease, Instance: w.Instance, Consumed: []int64{w.Messages[0].ID}}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestMergedCompletionsGrouped commits merged completions of many instances at once on one
// store, half of them refused (a message waits), with plain episodes among them: the writers
// group them, and each gets its own outcome and its own leased task.
func TestMergedCompletionsGrouped(t *testing.T) {
	s := openStore(t, pgtest.DSN(t), Options{Hub: randomHub()})
	ctx := t.Context()
	const n = 24
	tasks := make([]store.ActivityWork, n)
	insts := make([]store.Instance, n)
	for i := range n {
		tasks[i], insts[i] = leaseFirst(t, s, "A", fmt.Sprintf("g%02d", i))
	}
	for i := 1; i < n; i += 2 {
		if err := s.SendMessage(ctx, store.Message{InstanceID: insts[i].ID, Data: []byte("event")}); err != nil {
			t.Fatal(err)
		}
	}
	create(t, s, "plain")
	plain := claimInstance(t, s, "P", "plain") // the waiting instances are put back
	episodes := make([]store.Episode, n)
	errs := make([]error, n+1)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		episodes[i] = mergedStep(tasks[i], insts[i], "merged "+insts[i].ID)
		wg.Go(func() {
			<-start
			errs[i] = s.CommitEpisode(ctx, episodes[i])
		})
	}
	wg.Go(func() {
		<-start
		errs[n] = s.CommitEpisode(ctx, store.Episode{Lease: plain.Lease, Instance: plain.Instance, Consumed: []int64{plain.Messages[0].ID}})
	})
	close(start)
	wg.Wait()
	if errs[n] != nil {
		t.Fatalf("plain episode among merged completions: %v", errs[n])
	}
	for i := range n {
		id := insts[i].ID
		h := historyOf(t, s, id)
		if i%2 == 1 {
			if !errors.Is(errs[i], store.ErrInstanceBusy) || episodes[i].LeaseTasks.Leased != nil || len(h) != insts[i].HistoryLen {
				t.Fatalf("%s with a message waiting: %v, leased %v, history %q; want ErrInstanceBusy and nothing applied",
					id, errs[i], episodes[i].LeaseTasks.Leased, h)
			}
			if err := s.CompleteActivity(ctx, tasks[i].Task.ID, tasks[i].Lease, store.Message{InstanceID: id, Data: []byte("r")}); err != nil {
				t.Fatalf("%s: CompleteActivity after the refused merged completion: %v", id, err)
			}
			continue
		}
		if errs[i] != nil {
			t.Fatalf("merged completion of %s: %v", id, errs[i])
		}
		if len(h) != insts[i].HistoryLen+1 || h[len(h)-1] != "merged "+id {
			t.Fatalf("%s: history %q, want its own merged chunk last", id, h)
		}
		l := episodes[i].LeaseTasks.Leased
		if len(l) != 1 || l[0].Task.InstanceID != id || string(l[0].Task.Data) != "in:merged "+id || l[0].Lease.Owner != "A" {
			t.Fatalf("%s: leased %+v, want its own task, leased to A", id, l)
		}
		if err := s.CompleteActivity(ctx, l[0].Task.ID, l[0].Lease, store.Message{InstanceID: id, Data: []byte("r")}); err != nil {
			t.Fatalf("%s: CompleteActivity of the task its merged completion leased: %v", id, err)
		}
	}
}

// TestMergedCompletionLeasedTasksDie: the tasks a merged completion leases die with the other
// leases of their owner's incarnation, whether it releases them (ReleaseLeases) or a new
// incarnation of the owner starts (a restart). A completion under a lease already dead still
// completes its task, but the tasks it leases are anyone's at once.
func TestMergedCompletionLeasedTasksDie(t *testing.T) {
	dsn := pgtest.DSN(t)
	hub := randomHub()
	a, b := openStore(t, dsn, Options{Hub: hub}), openStore(t, dsn, Options{Hub: hub})
	ctx := t.Context()

	// Released: a chain of two merged completions, then ReleaseLeases.
	aw, inst := leaseFirst(t, a, "A", "released")
	for _, step := range []string{"one", "two"} {
		e := mergedStep(aw, inst, step)
		if err := a.CommitEpisode(ctx, e); err != nil {
			t.Fatalf("merged completion %s: %v", step, err)
		}
		aw = e.LeaseTasks.Leased[0]
		var err error
		if inst, err = a.GetInstance(ctx, "released"); err != nil {
			t.Fatal(err)
		}
	}
	if got := claimTasks(t, a, "B"); len(got) != 0 {
		t.Fatalf("B claimed %d tasks leased to A by merged completions", len(got))
	}
	if err := a.ReleaseLeases(ctx, "A"); err != nil {
		t.Fatal(err)
	}
	got := claimTasks(t, a, "B")
	if len(got) != 1 || got[0].Task.ID != aw.Task.ID {
		t.Fatalf("after A released its leases, B claimed %+v, want the task of A's last merged completion", got)
	}
	e := mergedStep(aw, inst, "late")
	if err := a.CommitEpisode(ctx, e); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("merged completion of a task B took over: %v, want ErrLeaseLost", err)
	}

	// A completion under a released lease, of a task nobody took over, completes it; its
	// leased task has the dead epoch and is anyone's.
	aw, inst = leaseFirst(t, a, "C", "dead")
	if err := a.ReleaseLeases(ctx, "C"); err != nil {
		t.Fatal(err)
	}
	e = mergedStep(aw, inst, "after release")
	if err := a.CommitEpisode(ctx, e); err != nil {
		t.Fatalf("merged completion under a released lease: %v", err)
	}
	got = claimTasks(t, a, "B")
	if len(got) != 1 || got[0].Task.ID != e.LeaseTasks.Leased[0].Task.ID {
		t.Fatalf("B claimed %+v, want the task leased under C's released lease", got)
	}

	// Restarted: the owner's next incarnation (another store, as after a restart) starts a new
	// epoch, and the merged completion's task of the previous one is recovered by another host.
	aw, inst = leaseFirst(t, a, "D", "restarted")
	e = mergedStep(aw, inst, "before restart")
	if err := a.CommitEpisode(ctx, e); err != nil {
		t.Fatal(err)
	}
	// Another host, with an owner of its own (an owner is used by one store at a time).
	if got := claimTasks(t, b, "E"); len(got) != 0 {
		t.Fatalf("another host claimed %d tasks under D's live leases", len(got))
	}
	restarted := openStore(t, dsn, Options{Hub: hub})
	if err := restarted.RenewLeases(ctx, "D", nil, time.Minute); err != nil {
		t.Fatal(err)
	}
	var recovered []store.ActivityWork
	storetest.Eventually(t, "another host to recover the task of D's previous incarnation", func() bool {
		recovered = append(recovered, claimTasks(t, b, "E")...)
		return len(recovered) > 0
	})
	if len(recovered) != 1 || recovered[0].Task.ID != e.LeaseTasks.Leased[0].Task.ID {
		t.Fatalf("recovered %+v, want the task leased by D's merged completion", recovered)
	}
}

// TestMergedCompletionTransaction: a merged completion is one write of its writer's
// transaction, not a claim.
func TestMergedCompletionTransaction(t *testing.T) {
	s := openStore(t, pgtest.DSN(t), Options{Hub: randomHub()})
	aw, inst := leaseFirst(t, s, "A", "x")
	seen := make(chan store.Transaction, 4)
	remove := s.ObserveTransactions(func(tx store.Transaction) { seen <- tx })
	defer remove()
	if err := s.CommitEpisode(t.Context(), mergedStep(aw, inst, "merged")); err != nil {
		t.Fatal(err)
	}
	select {
	case tx := <-seen:
		tx.Duration = 0
		if want := (store.Transaction{Writes: 1, Synced: true}); tx != want {
			t.Fatalf("merged completion observed as %+v, want %+v", tx, want)
		}
	case <-time.After(waitFor):
		t.Fatal("no transaction observed for the merged completion")
	}
}

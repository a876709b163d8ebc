package storetest

import (
	"testing"
	"time"

	"github.com/reprise-dev/reprise/store"
)

// Merged completions (Episode.Completes): an activity task's completion and the episode of its
// result, committed in one transaction by the node that ran the task and holds the instance's
// execution, without a claim of the instance.

// mergedFixture creates instance o, commits its first episode with one task "t" leased to a,
// and returns the leased task and the instance as stored after that commit.
func mergedFixture(t *testing.T, st store.Store, id string) (store.ActivityWork, store.Instance) {
	t.Helper()
	mustCreate(t, st, id)
	w := claimID(t, st, "a", id)
	e := consumeAll(w)
	e.Instance.Status = store.StatusRunning
	e.History = chunks("first")
	e.Tasks = []store.Task{{InstanceID: id, ExecutionID: w.Instance.ExecutionID, Name: "t", Data: []byte("in:t")}}
	e.LeaseTasks = &store.TaskLease{For: longLease, Tasks: []int{0}}
	mustCommit(t, st, e)
	if len(e.LeaseTasks.Leased) != 1 {
		t.Fatalf("the fixture's commit leased %d tasks, want 1", len(e.LeaseTasks.Leased))
	}
	return e.LeaseTasks.Leased[0], mustGet(t, st, id)
}

// merged is the episode of task aw's result for inst, as stored: it appends a chunk, sets a
// custom status and schedules one task, leased to the committer.
func merged(aw store.ActivityWork, inst store.Instance, next string) store.Episode {
	in := inst
	in.CustomStatus = []byte(`"after ` + next + `"`)
	in.UpdatedAt = time.Now()
	return store.Episode{
		Instance:   in,
		History:    chunks("result+" + next),
		Tasks:      []store.Task{{InstanceID: inst.ID, ExecutionID: inst.ExecutionID, Name: "t", Data: []byte("in:" + next)}},
		LeaseTasks: &store.TaskLease{For: longLease, Tasks: []int{0}},
		Completes:  &store.Completion{TaskID: aw.Task.ID, Lease: aw.Lease, ExecutionID: inst.ExecutionID, HistoryLen: inst.HistoryLen},
	}
}

func (s suite) testMergedCompletion(t *testing.T) {
	st := s.open(t)
	ctx := ctxOf(t)
	aw, inst := mergedFixture(t, st, "o")
	changed, stop := st.WatchInstance("o")
	defer stop()
	for step := range 3 {
		next := string(rune('a' + step))
		e := merged(aw, inst, next)
		if err := st.CommitEpisode(ctx, e); err != nil {
			t.Fatalf("merged completion %d: %v", step, err)
		}
		// The task is gone: completing it, or committing the same completion again, is refused.
		err := st.CompleteActivity(ctx, aw.Task.ID, aw.Lease, store.Message{InstanceID: "o", Data: []byte("again")})
		wantErr(t, "CompleteActivity of a task a merged completion completed", err, store.ErrLeaseLost)
		again := merged(aw, mustGet(t, st, "o"), next)
		wantErr(t, "the same merged completion twice", st.CommitEpisode(ctx, again), store.ErrLeaseLost)

		got := mustGet(t, st, "o")
		if got.HistoryLen != inst.HistoryLen+1 || string(got.CustomStatus) != `"after `+next+`"` || got.Status != store.StatusRunning {
			t.Fatalf("after merged completion %d: instance = %+v, want history length %d and the new custom status", step, got, inst.HistoryLen+1)
		}
		if h := mustHistory(t, st, "o"); string(h[len(h)-1]) != "result+"+next {
			t.Fatalf("history after merged completion %d ends with %q", step, h[len(h)-1])
		}
		if len(e.LeaseTasks.Leased) != 1 {
			t.Fatalf("merged completion %d leased %d tasks, want 1", step, len(e.LeaseTasks.Leased))
		}
		aw = e.LeaseTasks.Leased[0]
		if aw.Lease.Owner != "a" || aw.Lease.Token == 0 || aw.Task.ID == 0 || string(aw.Task.Data) != "in:"+next {
			t.Fatalf("merged completion %d leased %+v, want a task of a", step, aw)
		}
		inst = got
	}
	waitSignal(t, changed, "WatchInstance wake-up after a merged completion")
	// The result was never a message, and the leased task is nobody else's.
	if b := mustBacklog(t, st); b.OrchestrationMessages != 0 || b.ActivityTasks != 0 {
		t.Fatalf("backlog after merged completions = %+v, want nothing waiting", b)
	}
	if c := claimTasks(t, st, "b", 10, longLease); len(c) != 0 {
		t.Fatalf("another owner claimed %d tasks leased by a merged completion", len(c))
	}
	// The instance is left unleased: a message makes it anyone's at once.
	if err := st.SendMessage(ctx, store.Message{InstanceID: "o", Data: []byte("event")}); err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
	if w := claimID(t, st, "b", "o"); len(w.Messages) != 1 || string(w.Messages[0].Data) != "event" || w.Instance.HistoryLen != inst.HistoryLen {
		t.Fatalf("claim after merged completions = %+v, want the event alone and history length %d", w, inst.HistoryLen)
	}
}

// A merged completion can end the instance, or continue it as new.
func (s suite) testMergedCompletionEnds(t *testing.T) {
	st := s.open(t)
	ctx := ctxOf(t)
	aw, inst := mergedFixture(t, st, "o")
	e := merged(aw, inst, "x")
	e.Tasks, e.LeaseTasks = nil, nil
	e.Instance.Status = store.StatusCompleted
	e.Instance.Output = []byte(`"out"`)
	if err := st.CommitEpisode(ctx, e); err != nil {
		t.Fatalf("merged completion that completes the instance: %v", err)
	}
	if got := mustGet(t, st, "o"); got.Status != store.StatusCompleted || string(got.Output) != `"out"` {
		t.Fatalf("instance after completing merged commit = %+v", got)
	}

	aw, inst = mergedFixture(t, st, "p")
	e = merged(aw, inst, "y")
	e.ResetHistory = true
	e.Instance.ExecutionID = "exec-p-2"
	e.Tasks, e.LeaseTasks = nil, nil
	e.Messages = []store.Message{{InstanceID: "p", Data: []byte("started again")}}
	if err := st.CommitEpisode(ctx, e); err != nil {
		t.Fatalf("merged completion that continues as new: %v", err)
	}
	if got := mustGet(t, st, "p"); got.ExecutionID != "exec-p-2" || got.HistoryLen != 1 {
		t.Fatalf("instance after continue-as-new = %+v, want execution exec-p-2 and one chunk", got)
	}
	w := claimID(t, st, "b", "p")
	if len(w.Messages) != 1 || string(w.Messages[0].Data) != "started again" {
		t.Fatalf("inbox after continue-as-new = %+v", w.Messages)
	}
}

// A merged completion is refused, with nothing applied, when it would not be what a claim of
// the instance would have seen.
func (s suite) testMergedCompletionBusy(t *testing.T) {
	st := s.open(t)
	ctx := ctxOf(t)
	// unchanged checks that a refused merged completion left the task and the instance as they
	// were: the task is still aw's to complete, the history as it was.
	unchanged := func(what string, aw store.ActivityWork, inst store.Instance) {
		t.Helper()
		got := mustGet(t, st, inst.ID)
		if got.HistoryLen != inst.HistoryLen || string(got.CustomStatus) != string(inst.CustomStatus) {
			t.Fatalf("%s: the refused merged completion changed the instance: %+v", what, got)
		}
		if err := st.CompleteActivity(ctx, aw.Task.ID, aw.Lease, store.Message{InstanceID: inst.ID, Data: []byte("result")}); err != nil {
			t.Fatalf("%s: CompleteActivity after the refused merged completion: %v", what, err)
		}
	}

	// The instance is leased: someone claimed it for a message.
	aw, inst := mergedFixture(t, st, "leased")
	if err := st.SendMessage(ctx, store.Message{InstanceID: "leased", Data: []byte("event")}); err != nil {
		t.Fatal(err)
	}
	w := claimID(t, st, "b", "leased")
	wantErr(t, "merged completion of a leased instance", st.CommitEpisode(ctx, merged(aw, inst, "x")), store.ErrInstanceBusy)
	unchanged("leased", aw, inst)
	mustCommit(t, st, consumeAll(w))

	// A message is waiting: a claim would have delivered it with the result.
	aw, inst = mergedFixture(t, st, "waiting")
	if err := st.SendMessage(ctx, store.Message{InstanceID: "waiting", Data: []byte("event")}); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "merged completion with a message waiting", st.CommitEpisode(ctx, merged(aw, inst, "x")), store.ErrInstanceBusy)
	unchanged("waiting", aw, inst)

	// The history moved on, or the execution is another.
	aw, inst = mergedFixture(t, st, "moved")
	stale := inst
	stale.HistoryLen--
	wantErr(t, "merged completion on a stale history length", st.CommitEpisode(ctx, merged(aw, stale, "x")), store.ErrInstanceBusy)
	e := merged(aw, inst, "x")
	e.Completes.ExecutionID = "another execution"
	wantErr(t, "merged completion of another execution", st.CommitEpisode(ctx, e), store.ErrInstanceBusy)
	unchanged("moved", aw, inst)

	// A timer that is not due yet is no reason to refuse.
	aw, inst = mergedFixture(t, st, "timer")
	if err := st.SendMessage(ctx, store.Message{InstanceID: "timer", Data: []byte("later"), VisibleAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := st.CommitEpisode(ctx, merged(aw, inst, "x")); err != nil {
		t.Fatalf("merged completion with a future timer in the inbox: %v", err)
	}

	// An expired lease is no lease.
	aw, inst = mergedFixture(t, st, "expired")
	if err := st.SendMessage(ctx, store.Message{InstanceID: "expired", Data: []byte("event")}); err != nil {
		t.Fatal(err)
	}
	Eventually(t, "a short claim of the instance", func() bool {
		for _, w := range claim(t, st, "b", 100, shortLease) {
			if w.Instance.ID == "expired" {
				return true
			}
		}
		return false
	})
	e = merged(aw, inst, "x")
	waitPast(time.Now().Add(2 * shortLease))
	// Its message is still visible, so the merged commit waits for whoever claims it next.
	wantErr(t, "merged completion with the expired claim's message waiting", st.CommitEpisode(ctx, e), store.ErrInstanceBusy)
	w = claimID(t, st, "c", "expired")
	mustCommit(t, st, consumeAll(w))
	e = merged(aw, mustGet(t, st, "expired"), "x")
	if err := st.CommitEpisode(ctx, e); err != nil {
		t.Fatalf("merged completion after the claim expired and was committed: %v", err)
	}
}

// A merged completion whose task lease is lost applies nothing; a malformed one is refused.
func (s suite) testMergedCompletionRefused(t *testing.T) {
	st := s.open(t)
	ctx := ctxOf(t)
	aw, inst := mergedFixture(t, st, "o")
	for _, tc := range []struct {
		what string
		edit func(e *store.Episode)
		want error
	}{
		{"a wrong task token", func(e *store.Episode) { e.Completes.Lease.Token++ }, store.ErrLeaseLost},
		{"another owner's task lease", func(e *store.Episode) { e.Completes.Lease.Owner = "b" }, store.ErrLeaseLost},
		{"a task that does not exist", func(e *store.Episode) { e.Completes.TaskID += 1000 }, store.ErrLeaseLost},
		{"a claim's lease as well", func(e *store.Episode) { e.Lease = aw.Lease }, store.ErrInvalidArgument},
		{"no task", func(e *store.Episode) { e.Completes.TaskID = 0 }, store.ErrInvalidArgument},
		{"no task lease", func(e *store.Episode) { e.Completes.Lease = store.Lease{} }, store.ErrInvalidArgument},
		{"no execution", func(e *store.Episode) { e.Completes.ExecutionID = "" }, store.ErrInvalidArgument},
		{"a negative history length", func(e *store.Episode) { e.Completes.HistoryLen = -1 }, store.ErrInvalidArgument},
	} {
		e := merged(aw, inst, "x")
		tc.edit(&e)
		wantErr(t, "merged completion with "+tc.what, st.CommitEpisode(ctx, e), tc.want)
		if e.LeaseTasks.Leased != nil {
			t.Fatalf("merged completion with %s reported leased tasks", tc.what)
		}
	}
	// The task of another instance.
	other, _ := mergedFixture(t, st, "other")
	e := merged(aw, inst, "x")
	e.Completes.TaskID, e.Completes.Lease = other.Task.ID, other.Lease
	wantErr(t, "merged completion with another instance's task", st.CommitEpisode(ctx, e), store.ErrInvalidArgument)

	// Nothing was applied: both tasks are still there, leased as they were, and nobody else's.
	if got := mustGet(t, st, "o"); got.HistoryLen != inst.HistoryLen {
		t.Fatalf("refused merged completions changed the history length to %d, from %d", got.HistoryLen, inst.HistoryLen)
	}
	if c := claimTasks(t, st, "b", 10, longLease); len(c) != 0 {
		t.Fatalf("refused merged completions left %d claimable tasks", len(c))
	}
	for _, x := range []store.ActivityWork{aw, other} {
		if err := st.CompleteActivity(ctx, x.Task.ID, x.Lease, store.Message{InstanceID: x.Task.InstanceID, Data: []byte("r")}); err != nil {
			t.Fatalf("CompleteActivity after refused merged completions: %v", err)
		}
	}
}

// A merged completion's messages and starts wake the dispatchers as an episode's do.
func (s suite) testMergedCompletionSignals(t *testing.T) {
	st := s.open(t)
	ctx := ctxOf(t)
	orch := st.WorkSignal(store.OrchestrationWorkKind)
	acts := st.WorkSignal(store.ActivityWorkKind)
	aw, inst := mergedFixture(t, st, "o")
	mustCreate(t, st, "peer")
	finish(t, st, "peer", store.StatusRunning) // no message left: nothing to claim
	drain(orch)
	drain(acts)
	e := merged(aw, inst, "x")
	e.Messages = []store.Message{{InstanceID: "peer", Data: []byte("from o")}}
	e.Tasks = append(e.Tasks, store.Task{InstanceID: "o", ExecutionID: inst.ExecutionID, Name: "act1", Data: []byte("unleased")})
	if err := st.CommitEpisode(ctx, e); err != nil {
		t.Fatalf("merged completion: %v", err)
	}
	waitSignal(t, orch, "orchestration wake-up for a merged completion's message")
	waitSignal(t, acts, "activity wake-up for a merged completion's unleased task")
	if w := claimID(t, st, "b", "peer"); len(w.Messages) != 1 || string(w.Messages[0].Data) != "from o" {
		t.Fatalf("peer's inbox = %+v", w.Messages)
	}
	if c := claimTasks(t, st, "b", 10, longLease); len(c) != 1 || string(c[0].Task.Data) != "unleased" {
		t.Fatalf("claimed %+v, want the unleased task alone", c)
	}
}

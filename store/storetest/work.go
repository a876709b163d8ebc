package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/reprise-dev/reprise/store"
)

func (s suite) testSendMessage(t *testing.T) {
	st := s.open(t)
	ctx := ctxOf(t)
	err := st.SendMessage(ctx, store.Message{InstanceID: "missing", Data: []byte("x")})
	wantErr(t, "SendMessage(missing)", err, store.ErrNotFound)

	mustCreate(t, st, "s")
	for i := range 3 {
		if err := st.SendMessage(ctx, store.Message{InstanceID: "s", ExecutionID: "exec-s", Data: fmt.Appendf(nil, "m%d", i)}); err != nil {
			t.Fatalf("SendMessage: %v", err)
		}
	}
	w := claimID(t, st, "n", "s")
	var data []string
	for _, m := range w.Messages {
		data = append(data, string(m.Data))
		if m.InstanceID != "s" {
			t.Fatalf("message for %q delivered to s", m.InstanceID)
		}
	}
	if !slices.Equal(data, []string{"started:s", "m0", "m1", "m2"}) {
		t.Fatalf("messages = %v, want the start message then m0..m2", data)
	}
	if w.Messages[1].ExecutionID != "exec-s" {
		t.Fatalf("ExecutionID = %q, want exec-s", w.Messages[1].ExecutionID)
	}
	if !slices.IsSorted(messageIDs(w.Messages)) || slices.Compact(messageIDs(w.Messages)) == nil {
		t.Fatalf("message IDs %v not in increasing order", messageIDs(w.Messages))
	}
	for i := 1; i < len(w.Messages); i++ {
		if w.Messages[i].ID == w.Messages[i-1].ID {
			t.Fatalf("duplicate message ID %d", w.Messages[i].ID)
		}
	}
}

func (s suite) testClaimOnlyVisible(t *testing.T) {
	st := s.open(t)
	ctx := ctxOf(t)
	mustCreate(t, st, "quiet")
	mustCommit(t, st, consumeAll(claimID(t, st, "n", "quiet")))
	if w := claim(t, st, "n", 10, longLease); len(w) != 0 {
		t.Fatalf("claimed %d instances with empty inboxes", len(w))
	}
	if next, err := st.NextVisibleAt(ctx); err != nil || !next.IsZero() {
		t.Fatalf("NextVisibleAt with no pending timers = %v, %v; want zero time", next, err)
	}

	visible := time.Now().Add(300 * time.Millisecond)
	if err := st.SendMessage(ctx, store.Message{InstanceID: "quiet", Data: []byte("timer"), VisibleAt: visible}); err != nil {
		t.Fatalf("SendMessage(timer): %v", err)
	}
	if w := claim(t, st, "n", 10, longLease); len(w) != 0 {
		t.Fatalf("claimed an instance whose only message is visible at %v (now %v)", visible, time.Now())
	}
	next, err := st.NextVisibleAt(ctx)
	if err != nil {
		t.Fatalf("NextVisibleAt: %v", err)
	}
	if d := next.Sub(visible); d < -time.Millisecond || d > time.Millisecond {
		t.Fatalf("NextVisibleAt = %v, want %v", next, visible)
	}

	var got []store.OrchestrationWork
	Eventually(t, "the timer to become claimable", func() bool {
		got = claim(t, st, "n", 10, longLease)
		return len(got) > 0
	})
	if time.Now().Before(visible) {
		t.Fatalf("timer claimed at %v, before its visible time %v", time.Now(), visible)
	}
	if len(got) != 1 || len(got[0].Messages) != 1 || string(got[0].Messages[0].Data) != "timer" ||
		got[0].Messages[0].VisibleAt.Sub(visible).Abs() > time.Millisecond {
		t.Fatalf("claimed %+v, want the timer message", got)
	}
	if next, err := st.NextVisibleAt(ctx); err != nil || !next.IsZero() {
		t.Fatalf("NextVisibleAt after the timer fired = %v, %v; want zero", next, err)
	}
}

func (s suite) testClaimExclusive(t *testing.T) {
	st := s.open(t)
	ctx := ctxOf(t)
	makeInstances(t, st, "e", 5)
	first := claim(t, st, "a", 2, longLease)
	if len(first) != 2 {
		t.Fatalf("claim of max 2 returned %d", len(first))
	}
	rest := claim(t, st, "b", 10, longLease)
	if len(rest) != 3 {
		t.Fatalf("second claim returned %d instances, want the other 3", len(rest))
	}
	for _, w := range rest {
		for _, f := range first {
			if w.Instance.ID == f.Instance.ID {
				t.Fatalf("instance %q claimed by two owners", w.Instance.ID)
			}
		}
	}
	if first[0].Lease == rest[0].Lease {
		t.Fatal("two claims got the same lease")
	}
	// New messages do not make a leased instance claimable.
	if err := st.SendMessage(ctx, store.Message{InstanceID: first[0].Instance.ID, Data: []byte("more")}); err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
	if w := claim(t, st, "c", 10, longLease); len(w) != 0 {
		t.Fatalf("claimed %q while its lease is live", w[0].Instance.ID)
	}
}

func (s suite) testClaimAfterLeaseExpiry(t *testing.T) {
	st := s.open(t)
	ctx := ctxOf(t)
	mustCreate(t, st, "x")
	a := claim(t, st, "a", 1, shortLease)
	if len(a) != 1 {
		t.Fatalf("claimed %d, want 1", len(a))
	}
	var b []store.OrchestrationWork
	Eventually(t, "the expired lease to be claimable", func() bool {
		b = claim(t, st, "b", 1, longLease)
		return len(b) == 1
	})
	if b[0].Lease == a[0].Lease || len(b[0].Messages) != 1 {
		t.Fatalf("reclaim = %+v", b[0])
	}
	e := consumeAll(a[0])
	e.Instance.Status = store.StatusCompleted
	e.History = chunks("from-a")
	e.Tasks = []store.Task{{InstanceID: "x", Name: "from-a", Data: []byte("x")}}
	wantErr(t, "commit after the lease was taken over", st.CommitEpisode(ctx, e), store.ErrLeaseLost)
	if got := mustGet(t, st, "x"); got.Status != store.StatusPending || got.HistoryLen != 0 {
		t.Fatalf("a fenced commit was applied: %+v", got)
	}
	if tasks := claimTasks(t, st, "n", 10, longLease); len(tasks) != 0 {
		t.Fatal("a fenced commit created an activity task")
	}
	e = consumeAll(b[0])
	e.History = chunks("from-b")
	mustCommit(t, st, e)
	if h := mustHistory(t, st, "x"); !equalChunks(h, chunks("from-b")) {
		t.Fatalf("history = %q, want [from-b]", h)
	}
}

func (s suite) testMessagesDuringEpisode(t *testing.T) {
	st := s.open(t)
	ctx := ctxOf(t)
	mustCreate(t, st, "m")
	w := claimID(t, st, "a", "m")
	if err := st.SendMessage(ctx, store.Message{InstanceID: "m", Data: []byte("late")}); err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
	sig := st.WorkSignal(store.OrchestrationWorkKind)
	drain(sig)
	mustCommit(t, st, consumeAll(w))
	waitSignal(t, sig, "orchestration signal after a commit that left visible messages")
	again := claimID(t, st, "b", "m")
	if len(again.Messages) != 1 || string(again.Messages[0].Data) != "late" {
		t.Fatalf("messages after the episode = %+v, want only the late one", again.Messages)
	}
}

func (s suite) testCommitEpisode(t *testing.T) {
	st := s.open(t)
	ctx := ctxOf(t)
	mustCreate(t, st, "parent")
	mustCreate(t, st, "other")
	created := mustGet(t, st, "parent").CreatedAt
	mustCommit(t, st, consumeAll(claimID(t, st, "n", "other")))

	w := claimID(t, st, "n", "parent")
	if w.Instance.ID != "parent" || w.Instance.Name != "orchestrator" || string(w.Instance.Input) != `"input of parent"` {
		t.Fatalf("claimed instance = %+v", w.Instance)
	}
	child := newInstance("child")
	child.ParentID = "parent"
	timer := time.Now().Add(time.Hour)
	e := store.Episode{
		Lease:    w.Lease,
		Instance: w.Instance,
		Consumed: messageIDs(w.Messages),
		History:  chunks("h0", "h1"),
		Messages: []store.Message{
			{InstanceID: "other", Data: []byte("hello other")},
			{InstanceID: "parent", Data: []byte("timer"), VisibleAt: timer},
		},
		Tasks: []store.Task{
			{InstanceID: "parent", ExecutionID: "exec-parent", Name: "act1", Data: []byte("t1")},
			{InstanceID: "parent", ExecutionID: "exec-parent", Name: "act2", Data: []byte("t2")},
		},
		Starts: []store.Start{{Instance: child, Message: startMessage("child")}},
	}
	e.Instance.Status = store.StatusRunning
	e.Instance.CustomStatus = []byte(`"working"`)
	e.Instance.CreatedAt = time.Unix(1, 0) // ignored
	e.Instance.HistoryLen = 99             // ignored
	mustCommit(t, st, e)

	got := mustGet(t, st, "parent")
	if got.Status != store.StatusRunning || string(got.CustomStatus) != `"working"` || got.HistoryLen != 2 || !got.CreatedAt.Equal(created) {
		t.Fatalf("instance after commit = %+v (created %v)", got, created)
	}
	if h := mustHistory(t, st, "parent"); !equalChunks(h, chunks("h0", "h1")) {
		t.Fatalf("history = %q", h)
	}
	if next, err := st.NextVisibleAt(ctx); err != nil || next.Sub(timer).Abs() > time.Millisecond {
		t.Fatalf("NextVisibleAt = %v, %v; want the timer at %v", next, err, timer)
	}

	// Claimable now: other (its new message) and child (its start); not parent (consumed; the
	// timer is in the future).
	claimed := claim(t, st, "n", 10, longLease)
	byID := map[string]store.OrchestrationWork{}
	for _, cw := range claimed {
		byID[cw.Instance.ID] = cw
	}
	if len(claimed) != 2 || len(byID["other"].Messages) != 1 || string(byID["other"].Messages[0].Data) != "hello other" ||
		len(byID["child"].Messages) != 1 || string(byID["child"].Messages[0].Data) != "started:child" {
		t.Fatalf("claimed after commit = %+v", claimed)
	}
	if c := byID["child"].Instance; c.ParentID != "parent" || c.Status != store.StatusPending {
		t.Fatalf("started child = %+v", c)
	}

	tasks := claimTasks(t, st, "n", 10, longLease)
	if len(tasks) != 2 || tasks[0].Task.Name != "act1" || tasks[1].Task.Name != "act2" ||
		string(tasks[0].Task.Data) != "t1" || tasks[0].Task.InstanceID != "parent" || tasks[0].Task.ExecutionID != "exec-parent" {
		t.Fatalf("tasks = %+v", tasks)
	}

	// A second episode appends to the history.
	if err := st.SendMessage(ctx, store.Message{InstanceID: "parent", Data: []byte("event")}); err != nil {
		t.Fatal(err)
	}
	w = claimID(t, st, "n", "parent")
	if len(w.Messages) != 1 || string(w.Messages[0].Data) != "event" {
		t.Fatalf("second episode messages = %+v, want only the event (the timer is not visible)", w.Messages)
	}
	e = consumeAll(w)
	e.History = chunks("h2")
	mustCommit(t, st, e)
	if h := mustHistory(t, st, "parent"); !equalChunks(h, chunks("h0", "h1", "h2")) {
		t.Fatalf("history after append = %q", h)
	}
	if got := mustGet(t, st, "parent"); got.HistoryLen != 3 {
		t.Fatalf("HistoryLen = %d, want 3", got.HistoryLen)
	}
}

func (s suite) testResetHistory(t *testing.T) {
	st := s.open(t)
	mustCreate(t, st, "can")
	w := claimID(t, st, "n", "can")
	e := consumeAll(w)
	e.History = chunks("a", "b", "c")
	e.Messages = []store.Message{{InstanceID: "can", Data: []byte("continue")}}
	mustCommit(t, st, e)

	w = claimID(t, st, "n", "can")
	e = consumeAll(w)
	e.ResetHistory = true
	e.History = chunks("new-0")
	e.Instance.ExecutionID = "exec-2"
	mustCommit(t, st, e)
	if h := mustHistory(t, st, "can"); !equalChunks(h, chunks("new-0")) {
		t.Fatalf("history after reset = %q, want [new-0]", h)
	}
	got := mustGet(t, st, "can")
	if got.HistoryLen != 1 || got.ExecutionID != "exec-2" {
		t.Fatalf("after reset: HistoryLen %d, ExecutionID %q; want 1, exec-2", got.HistoryLen, got.ExecutionID)
	}
	// A reset with nothing to append leaves an empty history.
	if err := st.SendMessage(ctxOf(t), store.Message{InstanceID: "can", Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	e = consumeAll(claimID(t, st, "n", "can"))
	e.ResetHistory = true
	mustCommit(t, st, e)
	if h := mustHistory(t, st, "can"); len(h) != 0 || mustGet(t, st, "can").HistoryLen != 0 {
		t.Fatalf("history after an empty reset = %q", h)
	}
}

func (s suite) testCommitFencing(t *testing.T) {
	st := s.open(t)
	ctx := ctxOf(t)
	mustCreate(t, st, "f")
	mustCreate(t, st, "other")
	mustCommit(t, st, consumeAll(claimID(t, st, "n", "other")))
	w := claimID(t, st, "owner", "f")

	attempt := func(lease store.Lease) store.Episode {
		e := consumeAll(w)
		e.Lease = lease
		e.Instance.Status = store.StatusCompleted
		e.History = chunks("x")
		e.Messages = []store.Message{{InstanceID: "other", Data: []byte("x")}}
		e.Tasks = []store.Task{{InstanceID: "f", Name: "t", Data: []byte("x")}}
		e.Starts = []store.Start{{Instance: newInstance("kid"), Message: startMessage("kid")}}
		return e
	}
	for name, lease := range map[string]store.Lease{
		"wrong token": {Owner: w.Lease.Owner, Token: w.Lease.Token + 1},
		"wrong owner": {Owner: "intruder", Token: w.Lease.Token},
		"no lease":    {},
	} {
		wantErr(t, "commit with "+name, st.CommitEpisode(ctx, attempt(lease)), store.ErrLeaseLost)
	}
	if got := mustGet(t, st, "f"); got.Status != store.StatusPending || got.HistoryLen != 0 {
		t.Fatalf("fenced commit changed the instance: %+v", got)
	}
	if _, err := st.GetInstance(ctx, "kid"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("fenced commit started a sub-orchestration (GetInstance: %v)", err)
	}
	if tasks := claimTasks(t, st, "n", 10, longLease); len(tasks) != 0 {
		t.Fatal("fenced commit created a task")
	}
	if c := claim(t, st, "n", 10, longLease); len(c) != 0 {
		t.Fatalf("fenced commit delivered a message (claimed %q)", c[0].Instance.ID)
	}

	mustCommit(t, st, attempt(w.Lease))
	// The commit released the lease: the same lease cannot commit again.
	wantErr(t, "second commit with the same lease", st.CommitEpisode(ctx, attempt(w.Lease)), store.ErrLeaseLost)
	if got := mustGet(t, st, "f"); got.HistoryLen != 1 {
		t.Fatalf("HistoryLen = %d after one good and one fenced commit, want 1", got.HistoryLen)
	}
}

func (s suite) testStartConflicts(t *testing.T) {
	st := s.open(t)
	mustCreate(t, st, "parent")
	mustCreate(t, st, "busy")
	mustCreate(t, st, "old")
	populate(t, st, "old", store.StatusRunning)
	finish(t, st, "old", store.StatusCompleted)
	mustCommit(t, st, consumeAll(claimID(t, st, "n", "busy")))

	w := claimID(t, st, "n", "parent")
	busy, old := newInstance("busy"), newInstance("old")
	busy.Input, old.Input = []byte(`"new busy"`), []byte(`"new old"`)
	e := consumeAll(w)
	e.Starts = []store.Start{
		{Instance: busy, Message: startMessage("busy"), OnConflict: store.Message{InstanceID: "parent", Data: []byte("conflict:busy")}},
		{Instance: old, Message: startMessage("old"), OnConflict: store.Message{InstanceID: "parent", Data: []byte("conflict:old")}},
	}
	mustCommit(t, st, e)

	if got := mustGet(t, st, "busy"); string(got.Input) != `"input of busy"` {
		t.Fatalf("an active instance was replaced by a start: %+v", got)
	}
	got := mustGet(t, st, "old")
	if string(got.Input) != `"new old"` || got.Status != store.StatusPending || got.HistoryLen != 0 {
		t.Fatalf("a finished instance was not replaced by a start: %+v", got)
	}
	if h := mustHistory(t, st, "old"); len(h) != 0 {
		t.Fatalf("replaced instance kept its history: %q", h)
	}
	claimed := claim(t, st, "n", 10, longLease)
	msgs := map[string][]string{}
	for _, cw := range claimed {
		for _, m := range cw.Messages {
			msgs[cw.Instance.ID] = append(msgs[cw.Instance.ID], string(m.Data))
		}
	}
	if !slices.Equal(msgs["parent"], []string{"conflict:busy"}) || !slices.Equal(msgs["old"], []string{"started:old"}) || len(msgs["busy"]) != 0 {
		t.Fatalf("messages after the starts = %v", msgs)
	}
}

func (s suite) testActivities(t *testing.T) {
	st := s.open(t)
	ctx := ctxOf(t)
	mustCreate(t, st, "o")
	w := claimID(t, st, "n", "o")
	e := consumeAll(w)
	for i := range 3 {
		e.Tasks = append(e.Tasks, store.Task{InstanceID: "o", ExecutionID: "exec-o", Name: fmt.Sprintf("act%d", i), Data: []byte{byte(i)}})
	}
	mustCommit(t, st, e)

	a := claimTasks(t, st, "a", 2, longLease)
	b := claimTasks(t, st, "b", 10, longLease)
	if len(a) != 2 || len(b) != 1 {
		t.Fatalf("claims returned %d and %d tasks, want 2 and 1", len(a), len(b))
	}
	if a[0].Task.ID == b[0].Task.ID || a[1].Task.ID == b[0].Task.ID {
		t.Fatal("a task was claimed twice")
	}
	if a[0].Lease.Owner != "a" || b[0].Lease.Owner != "b" || a[0].Lease == b[0].Lease {
		t.Fatalf("leases %+v and %+v", a[0].Lease, b[0].Lease)
	}
	if c := claimTasks(t, st, "c", 10, longLease); len(c) != 0 {
		t.Fatalf("claimed %d leased tasks", len(c))
	}

	wrong := a[0].Lease
	wrong.Token++
	err := st.CompleteActivity(ctx, a[0].Task.ID, wrong, store.Message{InstanceID: "o", Data: []byte("bad")})
	wantErr(t, "CompleteActivity with a wrong token", err, store.ErrLeaseLost)
	err = st.CompleteActivity(ctx, a[0].Task.ID, b[0].Lease, store.Message{InstanceID: "o", Data: []byte("bad")})
	wantErr(t, "CompleteActivity with another task's lease", err, store.ErrLeaseLost)

	sig := st.WorkSignal(store.OrchestrationWorkKind)
	drain(sig)
	for _, aw := range append(a, b...) {
		res := store.Message{InstanceID: "o", ExecutionID: "exec-o", Data: []byte("result:" + aw.Task.Name)}
		if err := st.CompleteActivity(ctx, aw.Task.ID, aw.Lease, res); err != nil {
			t.Fatalf("CompleteActivity(%d): %v", aw.Task.ID, err)
		}
	}
	waitSignal(t, sig, "orchestration signal after CompleteActivity")
	err = st.CompleteActivity(ctx, a[0].Task.ID, a[0].Lease, store.Message{InstanceID: "o", Data: []byte("again")})
	wantErr(t, "completing a task twice", err, store.ErrLeaseLost)

	got := claimID(t, st, "n", "o")
	var results []string
	for _, m := range got.Messages {
		results = append(results, string(m.Data))
	}
	slices.Sort(results)
	if !slices.Equal(results, []string{"result:act0", "result:act1", "result:act2"}) {
		t.Fatalf("results in the inbox = %v", results)
	}
	if c := claimTasks(t, st, "c", 10, longLease); len(c) != 0 {
		t.Fatalf("%d completed tasks are still claimable", len(c))
	}
}

func (s suite) testActivityLeaseExpiry(t *testing.T) {
	st := s.open(t)
	ctx := ctxOf(t)
	mustCreate(t, st, "o")
	e := consumeAll(claimID(t, st, "n", "o"))
	e.Tasks = []store.Task{{InstanceID: "o", Name: "slow", Data: []byte("x")}}
	mustCommit(t, st, e)
	a := claimTasks(t, st, "a", 1, shortLease)
	if len(a) != 1 {
		t.Fatalf("claimed %d tasks, want 1", len(a))
	}
	var b []store.ActivityWork
	Eventually(t, "the expired task lease to be claimable", func() bool {
		b = claimTasks(t, st, "b", 1, longLease)
		return len(b) == 1
	})
	if b[0].Task.ID != a[0].Task.ID || b[0].Task.Name != "slow" {
		t.Fatalf("reclaimed %+v, want the same task", b[0].Task)
	}
	err := st.CompleteActivity(ctx, a[0].Task.ID, a[0].Lease, store.Message{InstanceID: "o", Data: []byte("from a")})
	wantErr(t, "CompleteActivity after the task was reclaimed", err, store.ErrLeaseLost)
	if err := st.CompleteActivity(ctx, b[0].Task.ID, b[0].Lease, store.Message{InstanceID: "o", Data: []byte("from b")}); err != nil {
		t.Fatalf("CompleteActivity by the new owner: %v", err)
	}
	w := claimID(t, st, "n", "o")
	if len(w.Messages) != 1 || string(w.Messages[0].Data) != "from b" {
		t.Fatalf("inbox = %+v, want only the result from b", w.Messages)
	}
}

func (s suite) testRenewLeases(t *testing.T) {
	st := s.open(t)
	ctx := ctxOf(t)
	mustCreate(t, st, "o")
	e := consumeAll(claimID(t, st, "n", "o"))
	e.Tasks = []store.Task{{InstanceID: "o", Name: "t", Data: []byte("x")}}
	e.Messages = []store.Message{{InstanceID: "o", Data: []byte("next")}}
	mustCommit(t, st, e)

	const lease = 200 * time.Millisecond
	start := time.Now()
	orch := claim(t, st, "a", 1, lease)
	tasks := claimTasks(t, st, "a", 1, lease)
	if len(orch) != 1 || len(tasks) != 1 {
		t.Fatalf("claimed %d instances and %d tasks, want 1 and 1", len(orch), len(tasks))
	}
	if err := st.RenewLeases(ctx, "a", []store.Claim{orch[0].Claim(), tasks[0].Claim()}, longLease); err != nil {
		t.Fatalf("RenewLeases: %v", err)
	}
	if err := st.RenewLeases(ctx, "nobody", nil, longLease); err != nil {
		t.Fatalf("RenewLeases of an owner without leases: %v", err)
	}
	waitPast(start.Add(2 * lease))
	if c := claim(t, st, "b", 10, longLease); len(c) != 0 {
		t.Fatal("a renewed orchestration lease was taken after its original expiry")
	}
	if c := claimTasks(t, st, "b", 10, longLease); len(c) != 0 {
		t.Fatal("a renewed task lease was taken after its original expiry")
	}
	mustCommit(t, st, consumeAll(orch[0]))
	if err := st.CompleteActivity(ctx, tasks[0].Task.ID, tasks[0].Lease, store.Message{InstanceID: "o", Data: []byte("r")}); err != nil {
		t.Fatalf("CompleteActivity under a renewed lease: %v", err)
	}
}

// testRenewShortens: RenewLeases sets a lease to now+leaseFor even when that is sooner than its
// expiry: a short renewal gives an item back after a delay (the engine does so with an instance
// of a version it does not run), and a full one afterwards for no claims leaves it so.
func (s suite) testRenewShortens(t *testing.T) {
	st := s.open(t)
	ctx := ctxOf(t)
	mustCreate(t, st, "given-back")
	a := claim(t, st, "a", 1, longLease)
	if len(a) != 1 {
		t.Fatalf("claimed %d, want 1", len(a))
	}
	if err := st.RenewLeases(ctx, "a", []store.Claim{a[0].Claim()}, shortLease); err != nil {
		t.Fatalf("RenewLeases (shorter): %v", err)
	}
	if err := st.RenewLeases(ctx, "a", nil, longLease); err != nil {
		t.Fatalf("RenewLeases (no claims): %v", err)
	}
	var b []store.OrchestrationWork
	Eventually(t, "an instance whose lease was shortened to be claimable", func() bool {
		b = claim(t, st, "b", 1, longLease)
		return len(b) == 1
	})
	if b[0].Instance.ID != "given-back" || len(b[0].Messages) != 1 || b[0].Instance.Status != store.StatusPending {
		t.Fatalf("claimed after the short renewal: %+v", b[0])
	}
	mustCommit(t, st, consumeAll(b[0]))
	if err := st.CommitEpisode(ctx, consumeAll(a[0])); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("commit under the shortened, expired and retaken lease: %v, want ErrLeaseLost", err)
	}
}

// testRenewOnlyListed: RenewLeases extends only the claims it is given. The owner's other leases
// expire while the owner lives on and renews (a node that gave up on an item), and are then
// claimable by others; renewing a claim that was taken over does not take it back.
func (s suite) testRenewOnlyListed(t *testing.T) {
	st := s.open(t)
	ctx := ctxOf(t)
	for _, id := range []string{"kept", "dropped", "tasks"} {
		mustCreate(t, st, id)
	}
	e := consumeAll(claimID(t, st, "n", "tasks"))
	e.Tasks = []store.Task{{InstanceID: "tasks", Name: "kept", Data: []byte("k")}, {InstanceID: "tasks", Name: "dropped", Data: []byte("d")}}
	mustCommit(t, st, e)

	const lease = 300 * time.Millisecond
	start := time.Now()
	orch := claim(t, st, "a", 10, lease)
	tasks := claimTasks(t, st, "a", 10, lease)
	if len(orch) != 2 || len(tasks) != 2 {
		t.Fatalf("claimed %d instances and %d tasks, want 2 and 2", len(orch), len(tasks))
	}
	byName := map[string]store.Claim{}
	for _, w := range orch {
		byName["instance "+w.Instance.ID] = w.Claim()
	}
	for _, w := range tasks {
		byName["task "+w.Task.Name] = w.Claim()
	}
	kept := []store.Claim{byName["instance kept"], byName["task kept"]}
	// Renew the kept claims until the original lease is long past, as a live node does.
	for time.Since(start) < 2*lease {
		if err := st.RenewLeases(ctx, "a", kept, lease); err != nil {
			t.Fatalf("RenewLeases: %v", err)
		}
		time.Sleep(lease / 6)
	}
	if err := st.RenewLeases(ctx, "a", kept, longLease); err != nil {
		t.Fatalf("RenewLeases: %v", err)
	}
	var ob []store.OrchestrationWork
	Eventually(t, "the unrenewed instance lease of a live owner to be claimable", func() bool {
		ob = append(ob, claim(t, st, "b", 10, longLease)...)
		return len(ob) > 0
	})
	var tb []store.ActivityWork
	Eventually(t, "the unrenewed task lease of a live owner to be claimable", func() bool {
		tb = append(tb, claimTasks(t, st, "b", 10, longLease)...)
		return len(tb) > 0
	})
	if len(ob) != 1 || ob[0].Instance.ID != "dropped" || len(tb) != 1 || tb[0].Task.Name != "dropped" {
		t.Fatalf("b claimed %d instances and %d tasks; want only the dropped instance and task", len(ob), len(tb))
	}
	// a renews everything it once held: the taken-over claims stay b's.
	all := []store.Claim{byName["instance kept"], byName["task kept"], byName["instance dropped"], byName["task dropped"]}
	if err := st.RenewLeases(ctx, "a", all, longLease); err != nil {
		t.Fatalf("RenewLeases with lost claims: %v", err)
	}
	wantErr(t, "a's commit of the instance b took over", st.CommitEpisode(ctx, consumeAll(store.OrchestrationWork{
		Instance: ob[0].Instance, Lease: byName["instance dropped"].Lease})), store.ErrLeaseLost)
	mustCommit(t, st, consumeAll(ob[0]))
	if err := st.CompleteActivity(ctx, tb[0].Task.ID, tb[0].Lease, store.Message{InstanceID: "tasks", Data: []byte("b")}); err != nil {
		t.Fatalf("b's completion of the task it took over: %v", err)
	}
	for _, w := range orch {
		if w.Instance.ID == "kept" {
			mustCommit(t, st, consumeAll(w))
		}
	}
	kt := byName["task kept"]
	if err := st.CompleteActivity(ctx, kt.TaskID, kt.Lease, store.Message{InstanceID: "tasks", Data: []byte("a")}); err != nil {
		t.Fatalf("CompleteActivity under a renewed lease: %v", err)
	}
}

func (s suite) testReleaseLeases(t *testing.T) {
	st := s.open(t)
	ctx := ctxOf(t)
	mustCreate(t, st, "o")
	mustCreate(t, st, "kept")
	e := consumeAll(claimID(t, st, "n", "o"))
	e.Tasks = []store.Task{{InstanceID: "o", Name: "t", Data: []byte("x")}}
	e.Messages = []store.Message{{InstanceID: "o", Data: []byte("next")}}
	mustCommit(t, st, e)
	kept := claimID(t, st, "other-node", "kept")

	orch := claim(t, st, "a", 10, longLease)
	tasks := claimTasks(t, st, "a", 10, longLease)
	if len(orch) != 1 || len(tasks) != 1 {
		t.Fatalf("claimed %d instances and %d tasks, want 1 and 1", len(orch), len(tasks))
	}
	osig, asig := st.WorkSignal(store.OrchestrationWorkKind), st.WorkSignal(store.ActivityWorkKind)
	drain(osig)
	drain(asig)
	if err := st.ReleaseLeases(ctx, "a"); err != nil {
		t.Fatalf("ReleaseLeases: %v", err)
	}
	waitSignal(t, osig, "orchestration signal after ReleaseLeases")
	waitSignal(t, asig, "activity signal after ReleaseLeases")
	ob := claim(t, st, "b", 10, longLease)
	tb := claimTasks(t, st, "b", 10, longLease)
	if len(ob) != 1 || ob[0].Instance.ID != "o" || len(tb) != 1 {
		t.Fatalf("after release, b claimed %d instances and %d tasks; want o and the task", len(ob), len(tb))
	}
	wantErr(t, "commit after release", st.CommitEpisode(ctx, consumeAll(orch[0])), store.ErrLeaseLost)
	err := st.CompleteActivity(ctx, tasks[0].Task.ID, tasks[0].Lease, store.Message{InstanceID: "o", Data: []byte("r")})
	wantErr(t, "complete after release", err, store.ErrLeaseLost)
	// Another owner's lease is untouched.
	mustCommit(t, st, consumeAll(kept))
}

func (s suite) testWorkSignal(t *testing.T) {
	st := s.open(t)
	ctx := ctxOf(t)
	osig, asig := st.WorkSignal(store.OrchestrationWorkKind), st.WorkSignal(store.ActivityWorkKind)
	if osig == nil || asig == nil || osig == asig {
		t.Fatal("WorkSignal must return one distinct channel per kind")
	}
	// Each call has a channel of its own, and each receives every wake-up (an App's engine and a
	// gRPC server's workers on one store).
	second := st.WorkSignal(store.OrchestrationWorkKind)
	if second == osig {
		t.Fatal("WorkSignal returned the same channel to two callers: one of them would miss wake-ups")
	}
	drain(osig)
	drain(second)
	mustCreate(t, st, "w")
	waitSignal(t, osig, "orchestration signal after CreateInstance")
	waitSignal(t, second, "orchestration signal after CreateInstance, on a second caller's channel")

	w := claimID(t, st, "n", "w")
	mustCommit(t, st, consumeAll(w))
	drain(osig)
	if err := st.SendMessage(ctx, store.Message{InstanceID: "w", Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	waitSignal(t, osig, "orchestration signal after SendMessage")

	w = claimID(t, st, "n", "w")
	e := consumeAll(w)
	e.Tasks = []store.Task{{InstanceID: "w", Name: "t", Data: []byte("x")}}
	drain(asig)
	mustCommit(t, st, e)
	waitSignal(t, asig, "activity signal after a commit that added a task")

	claimTasks(t, st, "n", 1, longLease)
	if err := st.SendMessage(ctx, store.Message{InstanceID: "w", Data: []byte("y")}); err != nil {
		t.Fatal(err)
	}
	w = claimID(t, st, "n", "w")
	e = consumeAll(w)
	e.Messages = []store.Message{{InstanceID: "w", Data: []byte("timer"), VisibleAt: time.Now().Add(time.Hour)}}
	drain(osig)
	mustCommit(t, st, e)
	waitSignal(t, osig, "orchestration signal after a commit that added a timer (the next visible time changed)")
}

func (s suite) testWatchInstance(t *testing.T) {
	st := s.open(t)
	mustCreate(t, st, "w")
	changed, stop := st.WatchInstance("w")
	defer stop()
	stopped, stopNow := st.WatchInstance("w")
	stopNow()

	w := claimID(t, st, "n", "w")
	mustCreate(t, st, "other") // after the claim, so that only w is leased
	otherChanged, stopOther := st.WatchInstance("other")
	defer stopOther()
	select {
	case <-changed:
		t.Fatal("watch closed by a claim, which changes nothing visible")
	default:
	}
	e := consumeAll(w)
	e.Instance.Status = store.StatusCompleted
	e.Instance.Output = []byte(`42`)
	mustCommit(t, st, e)
	waitSignal(t, changed, "watch closed after a commit changed the instance")
	if got := mustGet(t, st, "w"); got.Status != store.StatusCompleted || string(got.Output) != "42" {
		t.Fatalf("after the watch fired, instance = %+v; the change must be readable", got)
	}
	select {
	case <-otherChanged:
		t.Fatal("watch on another instance closed")
	default:
	}
	select {
	case <-stopped:
		t.Fatal("a stopped watch was closed")
	default:
	}
	stop() // after the fire: harmless

	// A replacement by CreateInstance is a change too.
	again, stopAgain := st.WatchInstance("w")
	defer stopAgain()
	if err := st.CreateInstance(ctxOf(t), newInstance("w"), startMessage("w"), store.ReuseIfFinished); err != nil {
		t.Fatal(err)
	}
	waitSignal(t, again, "watch closed after CreateInstance replaced the instance")
}

func (s suite) testHubIsolation(t *testing.T) {
	if s.opts.OpenHubs == nil {
		t.Skip("no Options.OpenHubs: the store cannot open a second hub on the same database")
	}
	ctx := ctxOf(t)
	stores := s.opts.OpenHubs(t, []string{"hub-a", "hub-b"})
	a, b := stores[0], stores[1]
	if a.Hub() != "hub-a" || b.Hub() != "hub-b" {
		t.Fatalf("hubs = %q, %q", a.Hub(), b.Hub())
	}
	ia, ib := newInstance("same"), newInstance("same")
	ia.Input, ib.Input = []byte(`"a"`), []byte(`"b"`)
	if err := a.CreateInstance(ctx, ia, startMessage("same"), store.ReuseNever); err != nil {
		t.Fatal(err)
	}
	if err := b.CreateInstance(ctx, ib, startMessage("same"), store.ReuseNever); err != nil {
		t.Fatalf("the same ID in another hub: %v", err)
	}
	mustCreate(t, a, "only-a")
	if got := mustGet(t, b, "same"); string(got.Input) != `"b"` {
		t.Fatalf("hub b sees input %s", got.Input)
	}
	if _, err := b.GetInstance(ctx, "only-a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("hub b finds hub a's instance (err %v)", err)
	}
	wantErr(t, "SendMessage across hubs", b.SendMessage(ctx, store.Message{InstanceID: "only-a"}), store.ErrNotFound)
	if all, _ := listAll(t, b, store.Query{}); len(all) != 1 {
		t.Fatalf("hub b lists %v", ids(all))
	}

	wb := claim(t, b, "n", 10, longLease)
	if len(wb) != 1 || wb[0].Instance.ID != "same" || string(wb[0].Messages[0].Data) != "started:same" || len(wb[0].Messages) != 1 {
		t.Fatalf("hub b claimed %+v", wb)
	}
	e := consumeAll(wb[0])
	e.Tasks = []store.Task{{InstanceID: "same", Name: "b-task", Data: []byte("x")}}
	e.History = chunks("b-history")
	e.Instance.Status = store.StatusCompleted
	mustCommit(t, b, e)
	if tasks := claimTasks(t, a, "n", 10, longLease); len(tasks) != 0 {
		t.Fatal("hub a claimed hub b's task")
	}
	if h := mustHistory(t, a, "same"); len(h) != 0 {
		t.Fatalf("hub a sees hub b's history %q", h)
	}
	if tasks := claimTasks(t, b, "n", 10, longLease); len(tasks) != 1 {
		t.Fatalf("hub b claimed %d tasks, want its 1", len(tasks))
	}
	if err := a.ReleaseLeases(ctx, "n"); err != nil {
		t.Fatal(err)
	}
	if tasks := claimTasks(t, b, "m", 10, longLease); len(tasks) != 0 {
		t.Fatal("ReleaseLeases in hub a released hub b's task lease")
	}
	if n, err := a.PurgeInstances(ctx, store.PurgeFilter{}); err != nil || n != 0 {
		t.Fatalf("hub a purged %d (%v); hub b's finished instance must not count", n, err)
	}
	if got := mustGet(t, b, "same"); got.Status != store.StatusCompleted {
		t.Fatalf("hub b instance = %+v", got)
	}
	wa := claim(t, a, "n", 10, longLease)
	if len(wa) != 2 {
		t.Fatalf("hub a claimed %d instances, want its own 2", len(wa))
	}
}

// testConcurrentOrchestrationClaims checks that racing claimers never process a message twice
// and that every message is processed.
func (s suite) testConcurrentOrchestrationClaims(t *testing.T) {
	st := s.open(t)
	ctx := ctxOf(t)
	const instances, extra, workers = 20, 4, 4
	for i := range instances {
		id := fmt.Sprintf("c-%02d", i)
		mustCreate(t, st, id)
		for j := range extra {
			if err := st.SendMessage(ctx, store.Message{InstanceID: id, Data: fmt.Appendf(nil, "%s/%d", id, j)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	const total = instances * (extra + 1)
	var mu sync.Mutex
	seen := map[int64]string{}
	var failures []string
	var wg sync.WaitGroup
	deadline := time.Now().Add(waitFor)
	for n := range workers {
		owner := fmt.Sprintf("worker-%d", n)
		wg.Go(func() {
			for time.Now().Before(deadline) {
				mu.Lock()
				done := len(seen) == total
				mu.Unlock()
				if done {
					return
				}
				// A small max and a history append per episode make claims and commits interleave.
				work, err := st.ClaimOrchestrations(ctx, owner, orchestrators, 3, longLease)
				if err != nil {
					mu.Lock()
					failures = append(failures, "claim: "+err.Error())
					mu.Unlock()
					return
				}
				for _, w := range work {
					e := consumeAll(w)
					e.History = [][]byte{[]byte(owner)}
					// Consume at most two messages, so instances are claimed repeatedly.
					if len(e.Consumed) > 2 {
						e.Consumed = e.Consumed[:2]
					}
					if err := st.CommitEpisode(ctx, e); err != nil {
						mu.Lock()
						failures = append(failures, "commit: "+err.Error())
						mu.Unlock()
						continue
					}
					mu.Lock()
					for _, m := range w.Messages {
						if !slices.Contains(e.Consumed, m.ID) {
							continue
						}
						if prev, dup := seen[m.ID]; dup {
							failures = append(failures, fmt.Sprintf("message %d (%s) processed by %s and %s", m.ID, m.Data, prev, owner))
						}
						seen[m.ID] = owner
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("concurrent claims: %v", failures)
	}
	if len(seen) != total {
		t.Fatalf("processed %d messages, want %d", len(seen), total)
	}
	var episodes int
	for i := range instances {
		episodes += mustGet(t, st, fmt.Sprintf("c-%02d", i)).HistoryLen
	}
	if episodes != instances*3 { // 5 messages, 2 per episode: 3 episodes each
		t.Fatalf("committed %d episodes in total, want %d", episodes, instances*3)
	}
}

func (s suite) testConcurrentActivityClaims(t *testing.T) {
	st := s.open(t)
	ctx := ctxOf(t)
	mustCreate(t, st, "o")
	e := consumeAll(claimID(t, st, "n", "o"))
	const tasks, workers = 40, 4
	for i := range tasks {
		e.Tasks = append(e.Tasks, store.Task{InstanceID: "o", Name: "t", Data: fmt.Appendf(nil, "%d", i)})
	}
	mustCommit(t, st, e)

	var mu sync.Mutex
	done := map[int64]string{}
	var failures []string
	var wg sync.WaitGroup
	deadline := time.Now().Add(waitFor)
	for n := range workers {
		owner := fmt.Sprintf("worker-%d", n)
		wg.Go(func() {
			for time.Now().Before(deadline) {
				work, err := st.ClaimActivities(ctx, owner, activities, 3, longLease)
				if err != nil {
					mu.Lock()
					failures = append(failures, err.Error())
					mu.Unlock()
					return
				}
				if len(work) == 0 {
					mu.Lock()
					finished := len(done) == tasks
					mu.Unlock()
					if finished {
						return
					}
					continue
				}
				for _, w := range work {
					err := st.CompleteActivity(ctx, w.Task.ID, w.Lease, store.Message{InstanceID: "o", Data: w.Task.Data})
					mu.Lock()
					if err != nil {
						failures = append(failures, err.Error())
					} else if prev, dup := done[w.Task.ID]; dup {
						failures = append(failures, fmt.Sprintf("task %d completed by %s and %s", w.Task.ID, prev, owner))
					}
					done[w.Task.ID] = owner
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("concurrent activity claims: %v", failures)
	}
	if len(done) != tasks {
		t.Fatalf("completed %d tasks, want %d", len(done), tasks)
	}
	w := claimID(t, st, "n", "o")
	if len(w.Messages) != tasks {
		t.Fatalf("inbox holds %d results, want %d", len(w.Messages), tasks)
	}
	var results [][]byte
	for _, m := range w.Messages {
		results = append(results, m.Data)
	}
	slices.SortFunc(results, bytes.Compare)
	if len(slices.CompactFunc(results, bytes.Equal)) != tasks {
		t.Fatal("duplicate results in the inbox")
	}
}

func (s suite) testClosed(t *testing.T) {
	st := s.open(t)
	ctx := ctxOf(t)
	mustCreate(t, st, "c")
	if err := st.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	lease := store.Lease{Owner: "n", Token: 1}
	checks := map[string]error{
		"CreateInstance":   st.CreateInstance(ctx, newInstance("d"), startMessage("d"), store.ReuseAlways),
		"SendMessage":      st.SendMessage(ctx, store.Message{InstanceID: "c"}),
		"PurgeInstance":    st.PurgeInstance(ctx, "c"),
		"CommitEpisode":    st.CommitEpisode(ctx, store.Episode{Lease: lease, Instance: newInstance("c")}),
		"CompleteActivity": st.CompleteActivity(ctx, 1, lease, store.Message{InstanceID: "c"}),
		"RenewLeases":      st.RenewLeases(ctx, "n", []store.Claim{{InstanceID: "c", Lease: lease}}, time.Second),
		"ReleaseLeases":    st.ReleaseLeases(ctx, "n"),
	}
	_, checks["GetInstance"] = st.GetInstance(ctx, "c")
	_, _, checks["ListInstances"] = st.ListInstances(ctx, store.Query{})
	_, checks["History"] = st.History(ctx, "c")
	_, checks["CountInstances"] = st.CountInstances(ctx, store.Query{})
	_, checks["PurgeInstances"] = st.PurgeInstances(ctx, store.PurgeFilter{})
	_, checks["ClaimOrchestrations"] = st.ClaimOrchestrations(ctx, "n", orchestrators, 1, time.Second)
	_, checks["ClaimActivities"] = st.ClaimActivities(ctx, "n", activities, 1, time.Second)
	_, checks["NextVisibleAt"] = st.NextVisibleAt(ctx)
	_, checks["Setting"] = st.Setting(ctx, "s", []byte("v"))
	_, checks["Unclaimed"] = st.Unclaimed(ctx, orchestrators, activities)
	_, checks["Backlog"] = st.Backlog(ctx)
	for name, err := range checks {
		if !errors.Is(err, store.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
}

// testClaimByName checks that claims hand out only the names the claimer lists (matched
// case-insensitively), that another claimer with the name takes the rest, that an empty set
// claims nothing, and that Unclaimed counts what waits for names the caller lacks.
func (s suite) testClaimByName(t *testing.T) {
	st := s.open(t)
	ctx := ctxOf(t)
	create := func(id, name string) {
		t.Helper()
		inst := newInstance(id)
		inst.Name = name
		if err := st.CreateInstance(ctx, inst, startMessage(id), store.ReuseIfFinished); err != nil {
			t.Fatalf("CreateInstance(%q): %v", id, err)
		}
	}
	create("a-1", "Alpha")
	create("b-1", "beta")
	create("b-2", "Beta")
	unclaimed := func(orch, act store.Names) map[string]store.Unclaimed {
		t.Helper()
		return unclaimedByName(t, st, orch, act)
	}
	before := unclaimed(store.Names{"ALPHA"}, nil)
	if len(before) != 1 || before["orchestration:beta"].Count != 2 {
		t.Fatalf("Unclaimed for a claimer of ALPHA: %+v, want beta with 2 instances", before)
	}
	if again := unclaimed(store.Names{"ALPHA"}, nil); again["orchestration:beta"].Oldest != before["orchestration:beta"].Oldest {
		t.Fatalf("Oldest moved while nobody claimed: %+v then %+v", before, again)
	}
	if all := unclaimed(store.Names{"alpha", "beta"}, nil); len(all) != 0 {
		t.Fatalf("Unclaimed for a claimer of every name: %+v, want none", all)
	}

	if w, err := st.ClaimOrchestrations(ctx, "nobody", nil, 10, longLease); err != nil || len(w) != 0 {
		t.Fatalf("claim with no names: %d items, %v; want none", len(w), err)
	}
	w, err := st.ClaimOrchestrations(ctx, "x", store.Names{"ALPHA", "gamma"}, 10, longLease)
	if err != nil {
		t.Fatal(err)
	}
	if len(w) != 1 || w[0].Instance.ID != "a-1" || len(w[0].Messages) != 1 {
		t.Fatalf("claimer of ALPHA got %v, want a-1 with its message", workIDs(w))
	}
	if more, err := st.ClaimOrchestrations(ctx, "x", store.Names{"alpha"}, 10, longLease); err != nil || len(more) != 0 {
		t.Fatalf("claimer of alpha got %v (%v) while only beta waits", workIDs(more), err)
	}
	// The claimed instance is leased: it no longer counts; beta still does.
	if u := unclaimed(store.Names{"gamma"}, nil); len(u) != 1 || u["orchestration:beta"].Count != 2 {
		t.Fatalf("Unclaimed with a-1 leased: %+v, want only beta", u)
	}
	y, err := st.ClaimOrchestrations(ctx, "y", store.Names{"BETA"}, 10, longLease)
	if err != nil {
		t.Fatal(err)
	}
	if got := workIDs(y); !slices.Equal(got, []string{"b-1", "b-2"}) {
		t.Fatalf("claimer of BETA got %v, want b-1 and b-2 (both casings)", got)
	}
	for _, yw := range y {
		mustCommit(t, st, consumeAll(yw))
	}

	e := consumeAll(w[0])
	e.Tasks = []store.Task{
		{InstanceID: "a-1", ExecutionID: w[0].Instance.ExecutionID, Name: "Send", Data: []byte("s")},
		{InstanceID: "a-1", ExecutionID: w[0].Instance.ExecutionID, Name: "receive", Data: []byte("r")},
	}
	mustCommit(t, st, e)
	if u := unclaimed(store.Names{"alpha", "beta"}, store.Names{"send"}); len(u) != 1 || u["activity:receive"].Count != 1 {
		t.Fatalf("Unclaimed for a claimer of send: %+v, want receive", u)
	}
	if tw, err := st.ClaimActivities(ctx, "nobody", nil, 10, longLease); err != nil || len(tw) != 0 {
		t.Fatalf("task claim with no names: %d items, %v; want none", len(tw), err)
	}
	a, err := st.ClaimActivities(ctx, "a", store.Names{"SEND"}, 10, longLease)
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != 1 || a[0].Task.Name != "Send" {
		t.Fatalf("claimer of SEND got %+v, want the Send task", a)
	}
	if more, err := st.ClaimActivities(ctx, "a", store.Names{"send"}, 10, longLease); err != nil || len(more) != 0 {
		t.Fatalf("claimer of send got %d more tasks (%v) while only receive waits", len(more), err)
	}
	b, err := st.ClaimActivities(ctx, "b", store.Names{"Receive"}, 10, longLease)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 1 || b[0].Task.Name != "receive" {
		t.Fatalf("claimer of Receive got %+v, want the receive task", b)
	}
	if u := unclaimed(nil, nil); len(u) != 0 {
		t.Fatalf("Unclaimed with everything leased or done: %+v, want none", u)
	}
}

func workIDs(w []store.OrchestrationWork) []string {
	out := make([]string, len(w))
	for i, x := range w {
		out[i] = x.Instance.ID
	}
	return out
}

// testClaimTakesTurns checks that a claimer of several names is served from each in turn, so
// that one name's backlog cannot starve the others.
func (s suite) testClaimTakesTurns(t *testing.T) {
	st := s.open(t)
	ctx := ctxOf(t)
	for _, name := range []string{"a", "b"} {
		for i := range 3 {
			inst := newInstance(fmt.Sprintf("%s-%d", name, i))
			inst.Name = name
			if err := st.CreateInstance(ctx, inst, startMessage(inst.ID), store.ReuseIfFinished); err != nil {
				t.Fatal(err)
			}
		}
	}
	names := store.Names{"a", "b"}
	seen := map[string]bool{}
	var first store.OrchestrationWork
	for range 2 {
		w, err := st.ClaimOrchestrations(ctx, "n", names, 1, longLease)
		if err != nil || len(w) != 1 {
			t.Fatalf("claim of one: %v, %v", workIDs(w), err)
		}
		seen[w[0].Instance.Name] = true
		first = w[0]
	}
	if !seen["a"] || !seen["b"] {
		t.Fatalf("two claims of one instance each served only %v: each name must get its turn", seen)
	}

	e := consumeAll(first)
	for i := range 3 {
		e.Tasks = append(e.Tasks,
			store.Task{InstanceID: first.Instance.ID, Name: "x", Data: []byte{byte(i)}},
			store.Task{InstanceID: first.Instance.ID, Name: "y", Data: []byte{byte(i)}})
	}
	mustCommit(t, st, e)
	seen = map[string]bool{}
	for range 2 {
		w, err := st.ClaimActivities(ctx, "n", store.Names{"x", "y"}, 1, longLease)
		if err != nil || len(w) != 1 {
			t.Fatalf("task claim of one: %d tasks, %v", len(w), err)
		}
		seen[w[0].Task.Name] = true
	}
	if !seen["x"] || !seen["y"] {
		t.Fatalf("two task claims of one each served only %v: each name must get its turn", seen)
	}
}

// CheckMigratedClaims checks a store just migrated from schema version 1 (before claims by
// name) holding an instance "old" named Legacy with one message, and a task of activity Act:
// the migration gave the messages their instance's name, so claimers of those names (in any
// case) find the waiting work, and a claimer of another name does not. The instance, from
// before versions and tags (migration 4), has neither, and takes a version on commit.
func CheckMigratedClaims(t *testing.T, st store.Store) {
	t.Helper()
	ctx := ctxOf(t)
	// Rows from before entities are orchestrations, in listings and claims.
	if got := mustGet(t, st, "old"); got.Kind != store.KindOrchestration {
		t.Fatalf("instance from before entities has kind %s, want orchestration", got.Kind)
	}
	if page, _, err := st.ListInstances(ctx, store.Query{}); err != nil || !slices.Equal(ids(page), []string{"old"}) {
		t.Fatalf("listing of orchestrations after the migration: %q, %v; want [old]", ids(page), err)
	}
	for _, names := range []store.Names{{"legacy"}, store.AllNamesExcept()} {
		if w, err := st.ClaimEntities(ctx, "n", names, 10, time.Minute); err != nil || len(w) != 0 {
			t.Fatalf("entity claim of %q after the migration got %d (%v), want none", names, len(w), err)
		}
	}
	if w, err := st.ClaimOrchestrations(ctx, "n", store.Names{"other"}, 10, time.Minute); err != nil || len(w) != 0 {
		t.Fatalf("claimer of another name got %d (%v)", len(w), err)
	}
	w, err := st.ClaimOrchestrations(ctx, "n", store.Names{"legacy"}, 10, time.Minute)
	if err != nil || len(w) != 1 || len(w[0].Messages) != 1 {
		t.Fatalf("claimer of legacy after the migration: %+v, %v; want the old instance with its message", w, err)
	}
	wantVersionTags(t, "instance from before versions", w[0].Instance, "", nil)
	e := consumeAll(w[0])
	e.Instance.Version = "1.0"
	mustCommit(t, st, e)
	wantVersionTags(t, "instance from before versions, after a commit", mustGet(t, st, "old"), "1.0", nil)
	tasks, err := st.ClaimActivities(ctx, "n", store.Names{"act"}, 10, time.Minute)
	if err != nil || len(tasks) != 1 {
		t.Fatalf("claimer of act after the migration: %+v, %v; want the old task", tasks, err)
	}
}

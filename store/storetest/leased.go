package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/reprise-dev/reprise/store"
)

// Tasks committed already leased (Episode.LeaseTasks): the committer's local dispatch. They are
// the committer's as if it had claimed them, with every guarantee of a claim.

// commitLeased commits the episode of w with the tasks names, leasing those at the indexes
// leased to w's owner for leaseFor, and returns what the store leased.
func commitLeased(t *testing.T, st store.Store, w store.OrchestrationWork, names []string, leased []int, leaseFor time.Duration) []store.ActivityWork {
	t.Helper()
	e := consumeAll(w)
	for _, n := range names {
		e.Tasks = append(e.Tasks, store.Task{InstanceID: w.Instance.ID, ExecutionID: w.Instance.ExecutionID, Name: n, Data: []byte("in:" + n)})
	}
	e.LeaseTasks = &store.TaskLease{For: leaseFor, Tasks: leased}
	owner := w.Lease.Owner
	if err := st.CommitEpisode(ctxOf(t), e); err != nil {
		t.Fatalf("CommitEpisode with leased tasks: %v", err)
	}
	got := e.LeaseTasks.Leased
	if len(got) != len(leased) {
		t.Fatalf("CommitEpisode leased %d tasks, want %d", len(got), len(leased))
	}
	seen := map[int64]bool{}
	for j, aw := range got {
		want := names[leased[j]]
		if aw.Task.ID == 0 || seen[aw.Task.ID] || aw.Task.Name != want || string(aw.Task.Data) != "in:"+want ||
			aw.Task.InstanceID != w.Instance.ID || aw.Task.ExecutionID != w.Instance.ExecutionID {
			t.Fatalf("leased task %d = %+v, want a task of its own named %q", j, aw.Task, want)
		}
		if aw.Lease.Owner != owner || aw.Lease.Token == 0 {
			t.Fatalf("leased task %d has lease %+v, want one of %q", j, aw.Lease, owner)
		}
		seen[aw.Task.ID] = true
	}
	return got
}

func taskIDs(w []store.ActivityWork) []int64 {
	ids := make([]int64, len(w))
	for i, aw := range w {
		ids[i] = aw.Task.ID
	}
	slices.Sort(ids)
	return ids
}

func (s suite) testLeasedTasks(t *testing.T) {
	st := s.open(t)
	ctx := ctxOf(t)
	mustCreate(t, st, "o")
	leased := commitLeased(t, st, claimID(t, st, "a", "o"), []string{"act0", "act1", "act2"}, []int{2, 0}, longLease)
	if leased[0].Task.Name != "act2" || leased[1].Task.Name != "act0" {
		t.Fatalf("leased %s and %s, want act2 and act0, in the order asked", leased[0].Task.Name, leased[1].Task.Name)
	}
	// Only the unleased task is anyone's, the committer's included: its leased ones are held.
	b := claimTasks(t, st, "b", 10, longLease)
	if len(b) != 1 || b[0].Task.Name != "act1" {
		t.Fatalf("another owner claimed %+v, want only act1", b)
	}
	if a := claimTasks(t, st, "a", 10, longLease); len(a) != 0 {
		t.Fatalf("the committer claimed %d tasks it holds already", len(a))
	}
	wrong := leased[0].Lease
	wrong.Token++
	err := st.CompleteActivity(ctx, leased[0].Task.ID, wrong, store.Message{InstanceID: "o", Data: []byte("bad")})
	wantErr(t, "CompleteActivity of a leased task with a wrong token", err, store.ErrLeaseLost)
	err = st.CompleteActivity(ctx, leased[0].Task.ID, b[0].Lease, store.Message{InstanceID: "o", Data: []byte("bad")})
	wantErr(t, "CompleteActivity of a leased task with another owner's lease", err, store.ErrLeaseLost)
	for _, aw := range append(leased, b...) {
		if err := st.CompleteActivity(ctx, aw.Task.ID, aw.Lease, store.Message{InstanceID: "o", Data: []byte("r:" + aw.Task.Name)}); err != nil {
			t.Fatalf("CompleteActivity(%s): %v", aw.Task.Name, err)
		}
	}
	err = st.CompleteActivity(ctx, leased[1].Task.ID, leased[1].Lease, store.Message{InstanceID: "o", Data: []byte("again")})
	wantErr(t, "completing a leased task twice", err, store.ErrLeaseLost)
	w := claimID(t, st, "a", "o")
	var results []string
	for _, m := range w.Messages {
		results = append(results, string(m.Data))
	}
	slices.Sort(results)
	if !slices.Equal(results, []string{"r:act0", "r:act1", "r:act2"}) {
		t.Fatalf("results in the inbox = %v, want each once", results)
	}

	// An empty list leases nothing and inserts the tasks as without a TaskLease.
	none := commitLeased(t, st, w, []string{"t"}, nil, longLease)
	if len(none) != 0 {
		t.Fatalf("leased %d tasks when asked for none", len(none))
	}
	if c := claimTasks(t, st, "c", 10, longLease); len(c) != 1 || c[0].Task.Name != "t" {
		t.Fatalf("claimed %+v, want the unleased task t", c)
	}
}

func (s suite) testLeasedTasksExpire(t *testing.T) {
	st := s.open(t)
	ctx := ctxOf(t)
	mustCreate(t, st, "o")
	leased := commitLeased(t, st, claimID(t, st, "a", "o"), []string{"slow", "t"}, []int{0, 1}, shortLease)
	// The committer died before running them: once the lease has expired they are anyone's.
	var b []store.ActivityWork
	Eventually(t, "the expired leases of committed tasks to be claimable", func() bool {
		b = append(b, claimTasks(t, st, "b", 10, longLease)...)
		return len(b) == 2
	})
	if !slices.Equal(taskIDs(b), taskIDs(leased)) {
		t.Fatalf("claimed tasks %v after expiry, want the leased %v", taskIDs(b), taskIDs(leased))
	}
	err := st.CompleteActivity(ctx, leased[0].Task.ID, leased[0].Lease, store.Message{InstanceID: "o", Data: []byte("from a")})
	wantErr(t, "CompleteActivity under the expired commit lease", err, store.ErrLeaseLost)
	for _, aw := range b {
		if err := st.CompleteActivity(ctx, aw.Task.ID, aw.Lease, store.Message{InstanceID: "o", Data: []byte("from b")}); err != nil {
			t.Fatalf("CompleteActivity by the new owner: %v", err)
		}
	}
	w := claimID(t, st, "n", "o")
	if len(w.Messages) != 2 || string(w.Messages[0].Data) != "from b" || string(w.Messages[1].Data) != "from b" {
		t.Fatalf("inbox = %+v, want the two results from b only", w.Messages)
	}
}

func (s suite) testLeasedTasksRenew(t *testing.T) {
	st := s.open(t)
	ctx := ctxOf(t)
	mustCreate(t, st, "o")
	const lease = 200 * time.Millisecond
	start := time.Now()
	leased := commitLeased(t, st, claimID(t, st, "a", "o"), []string{"t"}, []int{0}, lease)
	if err := st.RenewLeases(ctx, "a", []store.Claim{leased[0].Claim()}, longLease); err != nil {
		t.Fatalf("RenewLeases: %v", err)
	}
	waitPast(start.Add(2 * lease))
	if c := claimTasks(t, st, "b", 10, longLease); len(c) != 0 {
		t.Fatal("a renewed lease of a committed task was taken after its original expiry")
	}
	if err := st.CompleteActivity(ctx, leased[0].Task.ID, leased[0].Lease, store.Message{InstanceID: "o", Data: []byte("r")}); err != nil {
		t.Fatalf("CompleteActivity under a renewed lease: %v", err)
	}
}

func (s suite) testLeasedTasksRelease(t *testing.T) {
	st := s.open(t)
	mustCreate(t, st, "o")
	leased := commitLeased(t, st, claimID(t, st, "a", "o"), []string{"t", "slow"}, []int{1}, longLease)
	if err := st.ReleaseLeases(ctxOf(t), "a"); err != nil {
		t.Fatalf("ReleaseLeases: %v", err)
	}
	b := claimTasks(t, st, "b", 10, longLease)
	if len(b) != 2 || !slices.Contains(taskIDs(b), leased[0].Task.ID) {
		t.Fatalf("claimed %v after the committer released its leases, want both tasks, %d among them", taskIDs(b), leased[0].Task.ID)
	}
	err := st.CompleteActivity(ctxOf(t), leased[0].Task.ID, leased[0].Lease, store.Message{InstanceID: "o", Data: []byte("late")})
	wantErr(t, "CompleteActivity under a released lease", err, store.ErrLeaseLost)
}

func (s suite) testLeasedTasksLostLease(t *testing.T) {
	st := s.open(t)
	mustCreate(t, st, "o")
	old := claim(t, st, "a", 1, shortLease)
	if len(old) != 1 {
		t.Fatalf("claimed %d instances, want 1", len(old))
	}
	var now []store.OrchestrationWork
	Eventually(t, "the expired instance lease to be claimable", func() bool {
		now = claim(t, st, "b", 1, longLease)
		return len(now) == 1
	})
	e := consumeAll(old[0])
	e.Tasks = []store.Task{{InstanceID: "o", Name: "t", Data: []byte("stale")}}
	e.LeaseTasks = &store.TaskLease{For: longLease, Tasks: []int{0}}
	wantErr(t, "CommitEpisode with leased tasks after the episode's lease was lost", st.CommitEpisode(ctxOf(t), e), store.ErrLeaseLost)
	if e.LeaseTasks.Leased != nil {
		t.Fatalf("a refused commit reported leased tasks %+v", e.LeaseTasks.Leased)
	}
	// Nothing was inserted: not leased to a, and not claimable by anyone once a's lease would be gone.
	if err := st.ReleaseLeases(ctxOf(t), "a"); err != nil {
		t.Fatalf("ReleaseLeases: %v", err)
	}
	if c := claimTasks(t, st, "c", 10, longLease); len(c) != 0 {
		t.Fatalf("a refused commit inserted tasks: %+v", c)
	}
	mustCommit(t, st, consumeAll(now[0]))
}

func (s suite) testLeasedTasksInvalid(t *testing.T) {
	st := s.open(t)
	mustCreate(t, st, "o")
	w := claimID(t, st, "n", "o")
	for _, tl := range []store.TaskLease{
		{For: longLease, Tasks: []int{1}},
		{For: longLease, Tasks: []int{-1}},
		{For: longLease, Tasks: []int{0, 0}},
		{For: 0, Tasks: []int{0}},
	} {
		e := consumeAll(w)
		e.Tasks = []store.Task{{InstanceID: "o", Name: "t", Data: []byte("x")}}
		e.LeaseTasks = &tl
		wantErr(t, "CommitEpisode with an invalid task lease", st.CommitEpisode(ctxOf(t), e), store.ErrInvalidArgument)
	}
	// Nothing was applied: the lease still holds, and the episode commits.
	mustCommit(t, st, consumeAll(w))
	if c := claimTasks(t, st, "c", 10, longLease); len(c) != 0 {
		t.Fatalf("refused commits inserted tasks: %+v", c)
	}
}

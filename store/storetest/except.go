package storetest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reprise-dev/reprise/store"
)

// unclaimedByName returns st.Unclaimed(orch, act) by kind and lowered name, checking that no
// name is listed twice and that every row counts something.
func unclaimedByName(t *testing.T, st store.Store, orch, act store.Names) map[string]store.Unclaimed {
	t.Helper()
	list, err := st.Unclaimed(ctxOf(t), orch, act)
	if err != nil {
		t.Fatalf("Unclaimed: %v", err)
	}
	out := map[string]store.Unclaimed{}
	for _, u := range list {
		key := u.Kind.String() + ":" + strings.ToLower(u.Name)
		if _, dup := out[key]; dup {
			t.Fatalf("Unclaimed listed %s twice: %+v", key, list)
		}
		if u.Count <= 0 || u.Oldest == 0 {
			t.Fatalf("Unclaimed row without count or oldest ID: %+v", u)
		}
		out[key] = u
	}
	return out
}

func counts(u map[string]store.Unclaimed) map[string]int {
	out := map[string]int{}
	for k, v := range u {
		out[k] = v.Count
	}
	return out
}

func equalCounts(got map[string]store.Unclaimed, want map[string]int) bool {
	g := counts(got)
	if len(g) != len(want) {
		return false
	}
	for k, n := range want {
		if g[k] != n {
			return false
		}
	}
	return true
}

// testClaimAllExcept checks claims of orchestrations with a set of every name but some
// (store.AllNamesExcept): they take ready instances of any other name, whatever its letter case,
// never one of an excluded name (in any case), never one without visible messages or under a live
// lease, at most max of them, under leases that fence commits and expire as any other; and
// Unclaimed counts, for such a set, the work of the excluded names.
func (s suite) testClaimAllExcept(t *testing.T) {
	st := s.open(t)
	ctx := ctxOf(t)
	create := func(id, name string, visible time.Time) {
		t.Helper()
		inst := newInstance(id)
		inst.Name = name
		start := startMessage(id)
		start.VisibleAt = visible
		if err := st.CreateInstance(ctx, inst, start, store.ReuseIfFinished); err != nil {
			t.Fatalf("CreateInstance(%q): %v", id, err)
		}
	}
	create("a-1", "Alpha", time.Time{})
	create("b-1", "beta", time.Time{})
	create("b-2", "Beta", time.Time{})
	create("g-1", "gamma", time.Time{})
	create("t-1", "timer", time.Now().Add(time.Hour)) // nothing visible

	if u := unclaimedByName(t, st, store.AllNamesExcept("ALPHA"), nil); !equalCounts(u, map[string]int{"orchestration:alpha": 1}) {
		t.Fatalf("Unclaimed for every name but ALPHA: %v, want alpha's instance only", counts(u))
	}
	if u := unclaimedByName(t, st, store.AllNamesExcept(), nil); len(u) != 0 {
		t.Fatalf("Unclaimed for every name: %v, want none", counts(u))
	}
	if u := unclaimedByName(t, st, store.AllNamesExcept("alpha", "BETA", "nobody"), store.AllNamesExcept()); !equalCounts(u,
		map[string]int{"orchestration:alpha": 1, "orchestration:beta": 2}) {
		t.Fatalf("Unclaimed for every name but alpha, BETA and nobody: %v, want alpha 1 and beta 2", counts(u))
	}

	notAlphaGamma := store.AllNamesExcept("ALPHA", "Gamma")
	first, err := st.ClaimOrchestrations(ctx, "x", notAlphaGamma, 1, longLease)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 1 || !strings.EqualFold(first[0].Instance.Name, "beta") || len(first[0].Messages) != 1 {
		t.Fatalf("claim of one of every name but ALPHA and Gamma got %v, want one beta instance with its message", workIDs(first))
	}
	second, err := st.ClaimOrchestrations(ctx, "x", notAlphaGamma, 10, longLease)
	if err != nil {
		t.Fatal(err)
	}
	if got := append(workIDs(first), workIDs(second)...); len(second) != 1 || !slices.Equal(sorted(got), []string{"b-1", "b-2"}) {
		t.Fatalf("two claims of every name but ALPHA and Gamma got %v, want b-1 and b-2 (both casings), once each", got)
	}
	if more, err := st.ClaimOrchestrations(ctx, "x", notAlphaGamma, 10, longLease); err != nil || len(more) != 0 {
		t.Fatalf("claim of every name but ALPHA and Gamma got %v (%v) while beta is leased and the rest excluded", workIDs(more), err)
	}
	if u := unclaimedByName(t, st, store.AllNamesExcept("alpha", "GAMMA"), nil); !equalCounts(u,
		map[string]int{"orchestration:alpha": 1, "orchestration:gamma": 1}) {
		t.Fatalf("Unclaimed for every name but alpha and GAMMA, beta leased: %v, want alpha 1 and gamma 1", counts(u))
	}

	y, err := st.ClaimOrchestrations(ctx, "y", store.AllNamesExcept(), 10, shortLease)
	if err != nil {
		t.Fatal(err)
	}
	if got := workIDs(y); !slices.Equal(got, []string{"a-1", "g-1"}) {
		t.Fatalf("claim of every name got %v, want a-1 and g-1 (beta leased, t-1 not visible)", got)
	}
	for _, w := range y {
		if len(w.Messages) != 1 || string(w.Messages[0].Data) != "started:"+w.Instance.ID {
			t.Fatalf("claim of every name gave %s the messages %+v, want its start message", w.Instance.ID, w.Messages)
		}
	}
	// y's short leases run out; a claimer excluding beta takes the instances over, and y's
	// commit is fenced off.
	var z []store.OrchestrationWork
	Eventually(t, "the expired leases to be claimable by every name but beta", func() bool {
		more, err := st.ClaimOrchestrations(ctx, "z", store.AllNamesExcept("beta"), 10, longLease)
		if err != nil {
			t.Fatal(err)
		}
		z = append(z, more...) // the two leases may expire in turn
		return len(z) >= 2
	})
	if got := sorted(workIDs(z)); !slices.Equal(got, []string{"a-1", "g-1"}) {
		t.Fatalf("claims after the leases expired got %v, want a-1 and g-1", got)
	}
	wantErr(t, "commit of a lease taken over", st.CommitEpisode(ctx, consumeAll(y[0])), store.ErrLeaseLost)
	for _, w := range append(z, append(first, second...)...) {
		mustCommit(t, st, consumeAll(w))
	}
	if left, err := st.ClaimOrchestrations(ctx, "z", store.AllNamesExcept(), 10, longLease); err != nil || len(left) != 0 {
		t.Fatalf("claim of every name after all was done got %v (%v), want none (t-1 is not visible)", workIDs(left), err)
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func taskNames(w []store.ActivityWork) []string {
	out := make([]string, len(w))
	for i, x := range w {
		out[i] = x.Task.Name
	}
	slices.Sort(out)
	return out
}

// testClaimActivitiesAllExcept is testClaimAllExcept for activity tasks.
func (s suite) testClaimActivitiesAllExcept(t *testing.T) {
	st := s.open(t)
	ctx := ctxOf(t)
	mustCreate(t, st, "o")
	e := consumeAll(claimID(t, st, "n", "o"))
	for _, name := range []string{"Send", "send", "receive", "Other"} {
		e.Tasks = append(e.Tasks, store.Task{InstanceID: "o", ExecutionID: "exec-o", Name: name, Data: []byte(name)})
	}
	mustCommit(t, st, e)

	if u := unclaimedByName(t, st, nil, store.AllNamesExcept("SEND")); !equalCounts(u, map[string]int{"activity:send": 2}) {
		t.Fatalf("Unclaimed for every activity but SEND: %v, want send's 2 tasks", counts(u))
	}
	if u := unclaimedByName(t, st, store.AllNamesExcept(), store.AllNamesExcept()); len(u) != 0 {
		t.Fatalf("Unclaimed for every name of both kinds: %v, want none", counts(u))
	}
	first, err := st.ClaimActivities(ctx, "a", store.AllNamesExcept("send"), 1, longLease)
	if err != nil {
		t.Fatal(err)
	}
	second, err := st.ClaimActivities(ctx, "a", store.AllNamesExcept("SEND"), 10, longLease)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 1 || !slices.Equal(taskNames(append(first, second...)), []string{"Other", "receive"}) {
		t.Fatalf("claims of 1 and 10 tasks of every activity but send got %v and %v, want 1 and then the other of Other and receive",
			taskNames(first), taskNames(second))
	}
	if more, err := st.ClaimActivities(ctx, "a", store.AllNamesExcept("sEnD"), 10, longLease); err != nil || len(more) != 0 {
		t.Fatalf("claim of every activity but sEnD got %v (%v) while only send's tasks are free", taskNames(more), err)
	}
	if u := unclaimedByName(t, st, nil, store.AllNamesExcept("send", "receive")); !equalCounts(u, map[string]int{"activity:send": 2}) {
		t.Fatalf("Unclaimed for every activity but send and receive, receive leased: %v, want send's 2 tasks", counts(u))
	}

	b, err := st.ClaimActivities(ctx, "b", store.AllNamesExcept(), 10, shortLease)
	if err != nil {
		t.Fatal(err)
	}
	if got := taskNames(b); !slices.Equal(got, []string{"Send", "send"}) {
		t.Fatalf("claim of every activity got %v, want the two send tasks", got)
	}
	var c []store.ActivityWork
	Eventually(t, "the expired task leases to be claimable by every activity but receive and OTHER", func() bool {
		more, err := st.ClaimActivities(ctx, "c", store.AllNamesExcept("receive", "OTHER"), 10, longLease)
		if err != nil {
			t.Fatal(err)
		}
		c = append(c, more...)
		return len(c) == 2
	})
	if got := taskNames(c); !slices.Equal(got, []string{"Send", "send"}) {
		t.Fatalf("claims after the leases expired got %v, want the two send tasks", got)
	}
	err = st.CompleteActivity(ctx, b[0].Task.ID, b[0].Lease, store.Message{InstanceID: "o", Data: []byte("late")})
	wantErr(t, "CompleteActivity with a lease taken over", err, store.ErrLeaseLost)
	for _, w := range slices.Concat(first, second, c) {
		if err := st.CompleteActivity(ctx, w.Task.ID, w.Lease, store.Message{InstanceID: "o", Data: []byte(w.Task.Name)}); err != nil {
			t.Fatalf("CompleteActivity(%s): %v", w.Task.Name, err)
		}
	}
	if left, err := st.ClaimActivities(ctx, "c", store.AllNamesExcept(), 10, longLease); err != nil || len(left) != 0 {
		t.Fatalf("claim of every activity after all were done got %v (%v)", taskNames(left), err)
	}
}

// testClaimAllExceptTakesTurns checks that a claimer of every name but some is served from each
// name with work in turn, as a claimer of several names is (testClaimTakesTurns).
func (s suite) testClaimAllExceptTakesTurns(t *testing.T) {
	st := s.open(t)
	ctx := ctxOf(t)
	for _, name := range []string{"a", "b", "c"} {
		for i := range 3 {
			inst := newInstance(fmt.Sprintf("%s-%d", name, i))
			inst.Name = name
			if err := st.CreateInstance(ctx, inst, startMessage(inst.ID), store.ReuseIfFinished); err != nil {
				t.Fatal(err)
			}
		}
	}
	seen := map[string]bool{}
	var last store.OrchestrationWork
	for range 2 {
		w, err := st.ClaimOrchestrations(ctx, "n", store.AllNamesExcept("C"), 1, longLease)
		if err != nil || len(w) != 1 {
			t.Fatalf("claim of one: %v, %v", workIDs(w), err)
		}
		seen[w[0].Instance.Name] = true
		last = w[0]
	}
	if !seen["a"] || !seen["b"] {
		t.Fatalf("two claims of one instance of every name but C served only %v: each name must get its turn", seen)
	}

	e := consumeAll(last)
	for i := range 3 {
		for _, name := range []string{"x", "y", "z"} {
			e.Tasks = append(e.Tasks, store.Task{InstanceID: last.Instance.ID, Name: name, Data: []byte{byte(i)}})
		}
	}
	mustCommit(t, st, e)
	seen = map[string]bool{}
	for range 2 {
		w, err := st.ClaimActivities(ctx, "n", store.AllNamesExcept("Z"), 1, longLease)
		if err != nil || len(w) != 1 {
			t.Fatalf("task claim of one: %d tasks, %v", len(w), err)
		}
		seen[w[0].Task.Name] = true
	}
	if !seen["x"] || !seen["y"] {
		t.Fatalf("two task claims of one of every activity but Z served only %v: each name must get its turn", seen)
	}
}

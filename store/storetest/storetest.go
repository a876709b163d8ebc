// Package storetest is the conformance suite of store.Store: the contract written as tests.
//
// Every store runs it from its own tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { ... a fresh, empty store ... })
//	}
//
// The suite uses the interface only, so any backend passes it unchanged. Tests that need time to
// pass use short leases and poll with a deadline instead of asserting on timing.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/reprise-dev/reprise/store"
)

// Options add optional hooks to Run.
type Options struct {
	// OpenHubs opens one store per hub name, all on the same fresh, empty database, to check that
	// hubs do not see each other's data. The hub isolation test is skipped when it is nil. Like
	// open, it registers the stores' Close with t.Cleanup.
	OpenHubs func(t *testing.T, hubs []string) []store.Store
}

// Run runs the conformance suite. open must return a fresh, empty store on each call and register
// its Close with t.Cleanup; the suite may close a store itself first, so a second Close must not
// panic (its error is ignored).
func Run(t *testing.T, open func(t *testing.T) store.Store, opts ...Options) {
	var o Options
	for _, x := range opts {
		if x.OpenHubs != nil {
			o.OpenHubs = x.OpenHubs
		}
	}
	s := suite{open: open, opts: o}
	tests := []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"Hub", s.testHub},
		{"CreateAndGet", s.testCreateAndGet},
		{"ReuseIfFinished", s.testReuseIfFinished},
		{"ReuseNever", s.testReuseNever},
		{"ReuseAlways", s.testReuseAlways},
		{"ListOrderAndPaging", s.testListOrderAndPaging},
		{"ListByteBound", s.testListByteBound},
		{"ListFilters", s.testListFilters},
		{"SendMessage", s.testSendMessage},
		{"ClaimOnlyVisible", s.testClaimOnlyVisible},
		{"ClaimExclusive", s.testClaimExclusive},
		{"ClaimAfterLeaseExpiry", s.testClaimAfterLeaseExpiry},
		{"ClaimByName", s.testClaimByName},
		{"ClaimTakesTurns", s.testClaimTakesTurns},
		{"ClaimAllExcept", s.testClaimAllExcept},
		{"ClaimActivitiesAllExcept", s.testClaimActivitiesAllExcept},
		{"ClaimAllExceptTakesTurns", s.testClaimAllExceptTakesTurns},
		{"MessagesDuringEpisode", s.testMessagesDuringEpisode},
		{"CommitEpisode", s.testCommitEpisode},
		{"ResetHistory", s.testResetHistory},
		{"CommitFencing", s.testCommitFencing},
		{"StartConflicts", s.testStartConflicts},
		{"Activities", s.testActivities},
		{"ActivityLeaseExpiry", s.testActivityLeaseExpiry},
		{"RenewLeases", s.testRenewLeases},
		{"RenewShortens", s.testRenewShortens},
		{"RenewOnlyListed", s.testRenewOnlyListed},
		{"LeasedTasks", s.testLeasedTasks},
		{"LeasedTasksExpire", s.testLeasedTasksExpire},
		{"LeasedTasksRenew", s.testLeasedTasksRenew},
		{"LeasedTasksRelease", s.testLeasedTasksRelease},
		{"LeasedTasksLostLease", s.testLeasedTasksLostLease},
		{"LeasedTasksInvalid", s.testLeasedTasksInvalid},
		{"MergedCompletion", s.testMergedCompletion},
		{"MergedCompletionEnds", s.testMergedCompletionEnds},
		{"MergedCompletionBusy", s.testMergedCompletionBusy},
		{"MergedCompletionRefused", s.testMergedCompletionRefused},
		{"MergedCompletionSignals", s.testMergedCompletionSignals},
		{"ReleaseLeases", s.testReleaseLeases},
		{"WorkSignal", s.testWorkSignal},
		{"RewindInstance", s.testRewindInstance},
		{"WatchInstance", s.testWatchInstance},
		{"PurgeInstance", s.testPurgeInstance},
		{"PurgeInstances", s.testPurgeInstances},
		{"PurgeFinishedBefore", s.testPurgeFinishedBefore},
		{"HubIsolation", s.testHubIsolation},
		{"Settings", s.testSettings},
		{"InvalidArguments", s.testInvalidArguments},
		{"TimeBounds", s.testTimeBounds},
		{"VersionAndTags", s.testVersionAndTags},
		{"InvalidVersionAndTags", s.testInvalidVersionAndTags},
		{"ListByVersion", s.testListByVersion},
		{"InvalidVersionFilter", s.testInvalidVersionFilter},
		{"ConcurrentOrchestrationClaims", s.testConcurrentOrchestrationClaims},
		{"ConcurrentActivityClaims", s.testConcurrentActivityClaims},
		{"EntityCreatedByMessage", s.testEntityCreatedByMessage},
		{"EntityMessageOrder", s.testEntityMessageOrder},
		{"EntityInvalidTargets", s.testEntityInvalidTargets},
		{"EntityClaimSeparation", s.testEntityClaimSeparation},
		{"EntityLeases", s.testEntityLeases},
		{"EntityBatch", s.testEntityBatch},
		{"EntityScheduled", s.testEntityScheduled},
		{"DeleteEntity", s.testDeleteEntity},
		{"EntityQueries", s.testEntityQueries},
		{"EntityRefusals", s.testEntityRefusals},
		{"EntityWorkSignal", s.testEntityWorkSignal},
		{"Backlog", s.testBacklog},
		{"Closed", s.testClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t)
		})
	}
}

type suite struct {
	open func(t *testing.T) store.Store
	opts Options
}

// longLease outlives any test; shortLease expires quickly enough to wait for.
const (
	longLease  = time.Minute
	shortLease = 50 * time.Millisecond
	waitFor    = 10 * time.Second
)

func ctxOf(t *testing.T) context.Context { return t.Context() }

// orchestrators and activities are the names the suite's instances and tasks use; the helpers
// claim with them, so a store that ignored the claimer's names would still pass the other tests,
// and testClaimByName checks the names themselves.
var (
	orchestrators = store.Names{"orchestrator", "other"}
	activities    = store.Names{"act0", "act1", "act2", "from-a", "t", "slow", "b-task", "old-task", "kept", "dropped"}
)

func newInstance(id string) store.Instance {
	return store.Instance{
		ID:          id,
		Name:        "orchestrator",
		ExecutionID: "exec-" + id,
		Status:      store.StatusPending,
		Input:       []byte(`"input of ` + id + `"`),
	}
}

func startMessage(id string) store.Message {
	return store.Message{InstanceID: id, Data: []byte("started:" + id)}
}

func mustCreate(t *testing.T, s store.Store, id string) store.Instance {
	t.Helper()
	inst := newInstance(id)
	if err := s.CreateInstance(ctxOf(t), inst, startMessage(id), store.ReuseIfFinished); err != nil {
		t.Fatalf("CreateInstance(%q): %v", id, err)
	}
	return inst
}

func mustGet(t *testing.T, s store.Store, id string) store.Instance {
	t.Helper()
	inst, err := s.GetInstance(ctxOf(t), id)
	if err != nil {
		t.Fatalf("GetInstance(%q): %v", id, err)
	}
	return inst
}

func mustHistory(t *testing.T, s store.Store, id string) [][]byte {
	t.Helper()
	h, err := s.History(ctxOf(t), id)
	if err != nil {
		t.Fatalf("History(%q): %v", id, err)
	}
	return h
}

func claim(t *testing.T, s store.Store, owner string, max int, lease time.Duration) []store.OrchestrationWork {
	t.Helper()
	w, err := s.ClaimOrchestrations(ctxOf(t), owner, orchestrators, max, lease)
	if err != nil {
		t.Fatalf("ClaimOrchestrations(%q): %v", owner, err)
	}
	return w
}

// claimID claims with a long lease and returns the work of instance id, failing if it is absent;
// other instances it happened to claim are released untouched.
func claimID(t *testing.T, s store.Store, owner, id string) store.OrchestrationWork {
	t.Helper()
	var found *store.OrchestrationWork
	for _, w := range claim(t, s, owner, 100, longLease) {
		if w.Instance.ID == id {
			found = &w
			continue
		}
		// Put the others back: an episode that changes nothing releases the lease.
		mustCommit(t, s, store.Episode{Lease: w.Lease, Instance: w.Instance})
	}
	if found == nil {
		t.Fatalf("ClaimOrchestrations did not return instance %q", id)
	}
	return *found
}

// Eventually polls cond until it holds, failing the test after a generous deadline. Stores'
// own tests use it for conditions that only time brings (a lease running out).
func Eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitPast sleeps until t0 has passed: some rules are about what happens after a time, and no
// signal exists for "a lease expired".
func waitPast(t0 time.Time) {
	if d := time.Until(t0); d > 0 {
		time.Sleep(d + 5*time.Millisecond)
	}
}

func messageIDs(ms []store.Message) []int64 {
	ids := make([]int64, len(ms))
	for i, m := range ms {
		ids[i] = m.ID
	}
	return ids
}

// consumeAll is an episode that consumes every delivered message and changes nothing else.
func consumeAll(w store.OrchestrationWork) store.Episode {
	return store.Episode{Lease: w.Lease, Instance: w.Instance, Consumed: messageIDs(w.Messages)}
}

func mustCommit(t *testing.T, s store.Store, e store.Episode) {
	t.Helper()
	if err := s.CommitEpisode(ctxOf(t), e); err != nil {
		t.Fatalf("CommitEpisode(%q): %v", e.Instance.ID, err)
	}
}

// finish claims id and commits an episode that sets status (and consumes its inbox).
func finish(t *testing.T, s store.Store, id string, status store.Status) {
	t.Helper()
	w := claimID(t, s, "finisher", id)
	e := consumeAll(w)
	e.Instance.Status = status
	e.Instance.Output = []byte(`"done"`)
	mustCommit(t, s, e)
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

func equalChunks(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

func chunks(ss ...string) [][]byte {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = []byte(s)
	}
	return out
}

func drain(ch <-chan struct{}) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

func waitSignal(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(waitFor):
		t.Fatalf("no %s", what)
	}
}

func claimTasks(t *testing.T, s store.Store, owner string, max int, lease time.Duration) []store.ActivityWork {
	t.Helper()
	w, err := s.ClaimActivities(ctxOf(t), owner, activities, max, lease)
	if err != nil {
		t.Fatalf("ClaimActivities(%q): %v", owner, err)
	}
	return w
}

func ids(page []store.Instance) []string {
	out := make([]string, len(page))
	for i, in := range page {
		out[i] = in.ID
	}
	return out
}

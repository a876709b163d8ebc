package storetest

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reprise-dev/reprise/store"
)

func (s suite) testHub(t *testing.T) {
	st := s.open(t)
	if st.Hub() == "" {
		t.Fatal("Hub() is empty")
	}
}

func (s suite) testCreateAndGet(t *testing.T) {
	st := s.open(t)
	ctx := ctxOf(t)
	before := time.Now().Add(-time.Second)
	inst := newInstance("a")
	inst.ParentID = "parent-1"
	inst.CustomStatus = []byte(`{"step":1}`)
	if err := st.CreateInstance(ctx, inst, startMessage("a"), store.ReuseIfFinished); err != nil {
		t.Fatalf("CreateInstance: %v", err)
	}
	got := mustGet(t, st, "a")
	if got.ID != "a" || got.Name != inst.Name || got.ExecutionID != inst.ExecutionID || got.ParentID != "parent-1" ||
		got.Status != store.StatusPending || !bytes.Equal(got.Input, inst.Input) || got.Output != nil ||
		!bytes.Equal(got.CustomStatus, inst.CustomStatus) || got.HistoryLen != 0 {
		t.Fatalf("GetInstance = %+v, want the created instance %+v", got, inst)
	}
	if got.CreatedAt.Before(before) || got.CreatedAt.After(time.Now().Add(time.Second)) {
		t.Fatalf("CreatedAt = %v, want about now", got.CreatedAt)
	}
	if got.UpdatedAt.IsZero() {
		t.Fatal("UpdatedAt is zero")
	}

	_, err := st.GetInstance(ctx, "missing")
	wantErr(t, "GetInstance(missing)", err, store.ErrNotFound)

	h := mustHistory(t, st, "a")
	if len(h) != 0 {
		t.Fatalf("History of a new instance has %d chunks, want 0", len(h))
	}
	if h, err := st.History(ctx, "missing"); err == nil && len(h) != 0 {
		t.Fatalf("History(missing) = %d chunks, want an ErrNotFound or nothing", len(h))
	} else if err != nil {
		wantErr(t, "History(missing)", err, store.ErrNotFound)
	}

	// The start message is in the inbox.
	w := claimID(t, st, "n1", "a")
	if len(w.Messages) != 1 || string(w.Messages[0].Data) != "started:a" || w.Messages[0].InstanceID != "a" {
		t.Fatalf("claimed messages = %+v, want the start message", w.Messages)
	}
	if w.Lease.Owner != "n1" {
		t.Fatalf("lease owner = %q, want n1", w.Lease.Owner)
	}
}

// populate gives instance id a history, a pending extra message and an activity task, all of
// which replacing the instance must remove.
func populate(t *testing.T, st store.Store, id string, status store.Status) {
	t.Helper()
	w := claimID(t, st, "populate", id)
	e := consumeAll(w)
	e.Instance.Status = status
	e.History = chunks("old-1", "old-2")
	e.Messages = []store.Message{{InstanceID: id, Data: []byte("old-message")}}
	e.Tasks = []store.Task{{InstanceID: id, ExecutionID: w.Instance.ExecutionID, Name: "old-task", Data: []byte("x")}}
	mustCommit(t, st, e)
}

func (s suite) testReuseIfFinished(t *testing.T) {
	st := s.open(t)
	ctx := ctxOf(t)
	mustCreate(t, st, "r")
	err := st.CreateInstance(ctx, newInstance("r"), startMessage("r"), store.ReuseIfFinished)
	wantErr(t, "CreateInstance over a Pending instance", err, store.ErrInstanceExists)

	populate(t, st, "r", store.StatusRunning)
	err = st.CreateInstance(ctx, newInstance("r"), startMessage("r"), store.ReuseIfFinished)
	wantErr(t, "CreateInstance over a Running instance", err, store.ErrInstanceExists)
	if got := mustGet(t, st, "r"); got.Status != store.StatusRunning || got.HistoryLen != 2 {
		t.Fatalf("refused create changed the instance: %+v", got)
	}

	// Finish it: the old history, the unprocessed message and the task must go on replace.
	w := claimID(t, st, "n", "r")
	e := consumeAll(w)
	e.Consumed = nil // leave the old message in the inbox
	e.Instance.Status = store.StatusCompleted
	mustCommit(t, st, e)

	repl := newInstance("r")
	repl.Input = []byte(`"second"`)
	if err := st.CreateInstance(ctx, repl, store.Message{InstanceID: "r", Data: []byte("start-2")}, store.ReuseIfFinished); err != nil {
		t.Fatalf("CreateInstance over a Completed instance: %v", err)
	}
	got := mustGet(t, st, "r")
	if got.Status != store.StatusPending || string(got.Input) != `"second"` || got.HistoryLen != 0 || got.Output != nil {
		t.Fatalf("replaced instance = %+v", got)
	}
	if h := mustHistory(t, st, "r"); len(h) != 0 {
		t.Fatalf("replaced instance kept %d history chunks", len(h))
	}
	w = claimID(t, st, "n", "r")
	if len(w.Messages) != 1 || string(w.Messages[0].Data) != "start-2" {
		t.Fatalf("replaced instance inbox = %+v, want only the new start message", w.Messages)
	}
	if tasks := claimTasks(t, st, "n", 10, longLease); len(tasks) != 0 {
		t.Fatalf("replaced instance kept %d activity tasks", len(tasks))
	}
}

func (s suite) testReuseNever(t *testing.T) {
	st := s.open(t)
	ctx := ctxOf(t)
	mustCreate(t, st, "active")
	err := st.CreateInstance(ctx, newInstance("active"), startMessage("active"), store.ReuseNever)
	wantErr(t, "ReuseNever over an active instance", err, store.ErrInstanceExists)

	mustCreate(t, st, "done")
	finish(t, st, "done", store.StatusCompleted)
	err = st.CreateInstance(ctx, newInstance("done"), startMessage("done"), store.ReuseNever)
	wantErr(t, "ReuseNever over a finished instance", err, store.ErrInstanceExists)
	if got := mustGet(t, st, "done"); got.Status != store.StatusCompleted {
		t.Fatalf("refused create changed the instance: status %s", got.Status)
	}
	if err := st.CreateInstance(ctx, newInstance("fresh"), startMessage("fresh"), store.ReuseNever); err != nil {
		t.Fatalf("ReuseNever for a new ID: %v", err)
	}
}

func (s suite) testReuseAlways(t *testing.T) {
	st := s.open(t)
	ctx := ctxOf(t)
	mustCreate(t, st, "x")
	populate(t, st, "x", store.StatusRunning)
	old := claimID(t, st, "node-a", "x")
	oldTasks := claimTasks(t, st, "node-a", 10, longLease)
	if len(oldTasks) != 1 {
		t.Fatalf("claimed %d tasks, want 1", len(oldTasks))
	}

	repl := newInstance("x")
	repl.Input = []byte(`"replacement"`)
	if err := st.CreateInstance(ctx, repl, store.Message{InstanceID: "x", Data: []byte("start-new")}, store.ReuseAlways); err != nil {
		t.Fatalf("ReuseAlways over a leased, running instance: %v", err)
	}

	e := consumeAll(old)
	e.Instance.Status = store.StatusCompleted
	e.History = chunks("stale")
	err := st.CommitEpisode(ctx, e)
	wantErr(t, "commit under a lease of the replaced instance", err, store.ErrLeaseLost)
	err = st.CompleteActivity(ctx, oldTasks[0].Task.ID, oldTasks[0].Lease, store.Message{InstanceID: "x", Data: []byte("stale-result")})
	wantErr(t, "completing a task of the replaced instance", err, store.ErrLeaseLost)

	got := mustGet(t, st, "x")
	if got.Status != store.StatusPending || string(got.Input) != `"replacement"` || got.HistoryLen != 0 {
		t.Fatalf("replacement instance = %+v", got)
	}
	if h := mustHistory(t, st, "x"); len(h) != 0 {
		t.Fatalf("replacement has %d history chunks, want 0", len(h))
	}
	// The replacement is claimable at once (its lease is not the old one) and holds only its start.
	w := claimID(t, st, "node-b", "x")
	if len(w.Messages) != 1 || string(w.Messages[0].Data) != "start-new" {
		t.Fatalf("replacement inbox = %+v, want only its start message", w.Messages)
	}
}

// makeInstances creates n instances named prefix-00.. and returns them as stored.
func makeInstances(t *testing.T, st store.Store, prefix string, n int) []store.Instance {
	t.Helper()
	var out []store.Instance
	for i := range n {
		id := fmt.Sprintf("%s-%02d", prefix, i)
		mustCreate(t, st, id)
		out = append(out, mustGet(t, st, id))
	}
	return out
}

func sortByCreated(insts []store.Instance) {
	slices.SortFunc(insts, func(a, b store.Instance) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
}

// listAll pages through q and fails on duplicates or a bad token.
func listAll(t *testing.T, st store.Store, q store.Query) (all []store.Instance, pages int) {
	t.Helper()
	seen := map[string]bool{}
	for {
		page, next, err := st.ListInstances(ctxOf(t), q)
		if err != nil {
			t.Fatalf("ListInstances(page %d): %v", pages+1, err)
		}
		pages++
		if q.PageSize > 0 && len(page) > q.PageSize {
			t.Fatalf("page %d has %d instances, page size %d", pages, len(page), q.PageSize)
		}
		for _, in := range page {
			if seen[in.ID] {
				t.Fatalf("instance %q listed twice", in.ID)
			}
			seen[in.ID] = true
		}
		all = append(all, page...)
		if next == "" {
			return all, pages
		}
		if len(page) == 0 {
			t.Fatalf("empty page %d with a continuation token", pages)
		}
		if pages > 1000 {
			t.Fatal("ListInstances never returned an empty token")
		}
		q.ContinuationToken = next
	}
}

func (s suite) testListOrderAndPaging(t *testing.T) {
	st := s.open(t)
	// Created in a shuffled ID order, so that ordering by ID alone would be wrong.
	var want []store.Instance
	for _, i := range []int{7, 2, 19, 0, 11, 4, 15, 9, 1, 20, 13, 5, 17, 3, 8, 12, 6, 18, 10, 14, 16} {
		id := fmt.Sprintf("p-%02d", i)
		mustCreate(t, st, id)
		want = append(want, mustGet(t, st, id))
	}
	sortByCreated(want)

	all, pages := listAll(t, st, store.Query{PageSize: 7})
	if pages != 3 {
		t.Errorf("21 instances in pages of 7 took %d pages, want 3 (and an empty token on the last)", pages)
	}
	if !slices.Equal(ids(all), ids(want)) {
		t.Fatalf("listing order = %v, want by creation time then ID %v", ids(all), ids(want))
	}
	all, pages = listAll(t, st, store.Query{PageSize: 5})
	if pages != 5 || !slices.Equal(ids(all), ids(want)) {
		t.Fatalf("pages of 5: %d pages, %v; want 5 pages, %v", pages, ids(all), ids(want))
	}
	all, pages = listAll(t, st, store.Query{})
	if pages != 1 || len(all) != 21 {
		t.Fatalf("default page size: %d pages, %d instances; want 1 page of 21", pages, len(all))
	}
	// Newest first: the same order reversed, across pages too.
	rev := ids(want)
	slices.Reverse(rev)
	all, pages = listAll(t, st, store.Query{PageSize: 4, NewestFirst: true})
	if pages != 6 || !slices.Equal(ids(all), rev) {
		t.Fatalf("newest first in pages of 4: %d pages, %v; want 6 pages, %v", pages, ids(all), rev)
	}
	newest, _ := listAll(t, st, store.Query{NewestFirst: true, IDPrefix: "p-1"})
	if got := ids(newest); len(got) != 10 || !slices.IsSortedFunc(got, func(a, b string) int {
		return slices.Index(rev, a) - slices.Index(rev, b)
	}) {
		t.Fatalf("newest first with prefix p-1: %v, want p-10 to p-19 in newest-first order", got)
	}

	// An instance created while paging sorts after the pages already read and shows up at the end.
	page, next, err := st.ListInstances(ctxOf(t), store.Query{PageSize: 10})
	if err != nil || len(page) != 10 || next == "" {
		t.Fatalf("first page: %d instances, token %q, err %v", len(page), next, err)
	}
	mustCreate(t, st, "p-late")
	rest, _ := listAll(t, st, store.Query{PageSize: 10, ContinuationToken: next})
	if got := append(ids(page), ids(rest)...); len(got) != 22 || got[21] != "p-late" {
		t.Fatalf("listing across a create = %v, want all 21 then p-late", got)
	}

	if _, _, err := st.ListInstances(ctxOf(t), store.Query{ContinuationToken: "not a token!"}); !errors.Is(err, store.ErrInvalidToken) {
		t.Fatalf("ListInstances with a malformed continuation token: %v, want ErrInvalidToken", err)
	}
}

func (s suite) testListFilters(t *testing.T) {
	st := s.open(t)
	ctx := ctxOf(t)
	insts := makeInstances(t, st, "f", 10)
	mustCreate(t, st, "g%_1")
	mustCreate(t, st, "gX")
	mustCreate(t, st, "G%_2")
	finish(t, st, "f-01", store.StatusCompleted)
	finish(t, st, "f-03", store.StatusFailed)
	finish(t, st, "f-05", store.StatusCompleted)

	byStatus, _ := listAll(t, st, store.Query{Statuses: []store.Status{store.StatusCompleted, store.StatusFailed}})
	if got := ids(byStatus); !slices.Equal(got, []string{"f-01", "f-03", "f-05"}) {
		t.Fatalf("status filter: %v, want [f-01 f-03 f-05]", got)
	}
	for _, in := range byStatus {
		if in.Status != store.StatusCompleted && in.Status != store.StatusFailed {
			t.Fatalf("status filter returned %s", in.Status)
		}
	}

	// Created range, inclusive at both ends.
	sortByCreated(insts)
	from, to := insts[2].CreatedAt, insts[6].CreatedAt
	var want []string
	all, _ := listAll(t, st, store.Query{})
	for _, in := range all {
		if !in.CreatedAt.Before(from) && !in.CreatedAt.After(to) {
			want = append(want, in.ID)
		}
	}
	ranged, _ := listAll(t, st, store.Query{CreatedFrom: from, CreatedTo: to, PageSize: 2})
	if got := ids(ranged); !slices.Equal(got, want) || !slices.Contains(got, insts[2].ID) || !slices.Contains(got, insts[6].ID) {
		t.Fatalf("created range [%v, %v]: %v, want %v (bounds inclusive)", from, to, got, want)
	}

	// ID prefix: literal and case-sensitive (no LIKE wildcards).
	pref, _ := listAll(t, st, store.Query{IDPrefix: "g%_"})
	if got := ids(pref); !slices.Equal(got, []string{"g%_1"}) {
		t.Fatalf("prefix g%%_: %v, want [g%%_1]", got)
	}
	pref, _ = listAll(t, st, store.Query{IDPrefix: "f-0", Statuses: []store.Status{store.StatusPending}})
	if len(pref) != 7 {
		t.Fatalf("prefix f-0 and Pending: %d instances, want 7", len(pref))
	}

	// Orchestrator name: whole, and case-insensitive as orchestrator names are.
	other := newInstance("n-1")
	other.Name = "Other"
	if err := st.CreateInstance(ctx, other, startMessage("n-1"), store.ReuseNever); err != nil {
		t.Fatalf("CreateInstance(n-1): %v", err)
	}
	named, _ := listAll(t, st, store.Query{Name: "Other"})
	if got := ids(named); !slices.Equal(got, []string{"n-1"}) {
		t.Fatalf("name filter Other: %v, want [n-1]", got)
	}
	if named, _ := listAll(t, st, store.Query{Name: "oTHER"}); !slices.Equal(ids(named), []string{"n-1"}) {
		t.Fatalf("name filter oTHER: %v, want [n-1] (names are case-insensitive)", ids(named))
	}
	if named, _ := listAll(t, st, store.Query{Name: "Othe"}); len(named) != 0 {
		t.Fatalf("name filter Othe: %v, want none (the whole name, not a prefix)", ids(named))
	}
	if named, _ := listAll(t, st, store.Query{Name: "orchestrator", Statuses: []store.Status{store.StatusCompleted}}); len(named) != 2 {
		t.Fatalf("name orchestrator and Completed: %v, want f-01 and f-05", ids(named))
	}

	// Counts by status follow the same filters and ignore paging.
	counts, err := st.CountInstances(ctx, store.Query{PageSize: 1, ContinuationToken: "ignored"})
	if err != nil {
		t.Fatalf("CountInstances: %v", err)
	}
	wantCounts := map[store.Status]int{store.StatusPending: 11, store.StatusCompleted: 2, store.StatusFailed: 1}
	if !maps.Equal(counts, wantCounts) {
		t.Fatalf("CountInstances() = %v, want %v", counts, wantCounts)
	}
	counts, err = st.CountInstances(ctx, store.Query{IDPrefix: "f-0", Name: "orchestrator", Statuses: []store.Status{store.StatusCompleted, store.StatusRunning}})
	if err != nil || !maps.Equal(counts, map[store.Status]int{store.StatusCompleted: 2}) {
		t.Fatalf("CountInstances(f-0, orchestrator, Completed|Running) = %v, %v; want Completed 2", counts, err)
	}
	counts, err = st.CountInstances(ctx, store.Query{CreatedFrom: from, CreatedTo: to})
	if n := counts[store.StatusPending] + counts[store.StatusCompleted] + counts[store.StatusFailed]; err != nil || n != len(want) {
		t.Fatalf("CountInstances(created range) = %v, %v; want %d in all", counts, err, len(want))
	}

	// WithoutPayloads drops the payloads but keeps the rest.
	page, _, err := st.ListInstances(ctx, store.Query{IDPrefix: "f-01", WithoutPayloads: true})
	if err != nil || len(page) != 1 {
		t.Fatalf("ListInstances(WithoutPayloads): %v, %d instances", err, len(page))
	}
	if in := page[0]; in.Input != nil || in.Output != nil || in.CustomStatus != nil ||
		in.Name != "orchestrator" || in.Status != store.StatusCompleted || in.CreatedAt.IsZero() {
		t.Fatalf("WithoutPayloads instance = %+v", in)
	}
	page, _, err = st.ListInstances(ctx, store.Query{IDPrefix: "f-01"})
	if err != nil || len(page) != 1 || page[0].Input == nil || string(page[0].Output) != `"done"` {
		t.Fatalf("ListInstances with payloads = %+v, %v", page, err)
	}
}

func (s suite) testPurgeInstance(t *testing.T) {
	st := s.open(t)
	ctx := ctxOf(t)
	wantErr(t, "PurgeInstance(missing)", st.PurgeInstance(ctx, "missing"), store.ErrNotFound)

	mustCreate(t, st, "p")
	populate(t, st, "p", store.StatusRunning)
	wantErr(t, "PurgeInstance(running)", st.PurgeInstance(ctx, "p"), store.ErrInstanceActive)
	if got := mustGet(t, st, "p"); got.HistoryLen != 2 {
		t.Fatalf("refused purge changed the instance: %+v", got)
	}

	w := claimID(t, st, "n", "p")
	e := store.Episode{Lease: w.Lease, Instance: w.Instance} // leave the message in the inbox
	e.Instance.Status = store.StatusTerminated
	mustCommit(t, st, e)
	if err := st.PurgeInstance(ctx, "p"); err != nil {
		t.Fatalf("PurgeInstance(terminated): %v", err)
	}
	_, err := st.GetInstance(ctx, "p")
	wantErr(t, "GetInstance after purge", err, store.ErrNotFound)
	if h, err := st.History(ctx, "p"); err == nil && len(h) != 0 {
		t.Fatalf("history survived the purge: %d chunks", len(h))
	}
	if tasks := claimTasks(t, st, "n", 10, longLease); len(tasks) != 0 {
		t.Fatalf("%d activity tasks survived the purge", len(tasks))
	}
	wantErr(t, "PurgeInstance twice", st.PurgeInstance(ctx, "p"), store.ErrNotFound)
	// A new instance with the ID starts with an empty inbox apart from its own start message.
	mustCreate(t, st, "p")
	if w := claimID(t, st, "n", "p"); len(w.Messages) != 1 || string(w.Messages[0].Data) != "started:p" {
		t.Fatalf("inbox after purge and create = %+v, want only the new start message", w.Messages)
	}
}

func (s suite) testPurgeInstances(t *testing.T) {
	st := s.open(t)
	ctx := ctxOf(t)
	insts := makeInstances(t, st, "q", 8)
	statuses := []store.Status{
		store.StatusCompleted, store.StatusCompleted, store.StatusFailed, store.StatusTerminated,
		store.StatusCanceled, store.StatusCompleted, store.StatusRunning, store.StatusPending,
	}
	for i, status := range statuses {
		if status != store.StatusPending {
			finish(t, st, insts[i].ID, status)
		}
	}
	remaining := func() []string {
		all, _ := listAll(t, st, store.Query{})
		return ids(all)
	}

	n, err := st.PurgeInstances(ctx, store.PurgeFilter{Statuses: []store.Status{store.StatusRunning, store.StatusPending}})
	if err != nil || n != 0 {
		t.Fatalf("PurgeInstances(active statuses) = %d, %v; want 0, nil", n, err)
	}
	n, err = st.PurgeInstances(ctx, store.PurgeFilter{Statuses: []store.Status{store.StatusFailed}})
	if err != nil || n != 1 {
		t.Fatalf("PurgeInstances(Failed) = %d, %v; want 1", n, err)
	}
	if got := remaining(); slices.Contains(got, "q-02") || len(got) != 7 {
		t.Fatalf("after purging Failed: %v", got)
	}

	// Created range: of q-00..q-03, the finished ones left are q-00, q-01 (Completed) and q-03
	// (Terminated).
	from, to := insts[0].CreatedAt, insts[3].CreatedAt
	var want []string
	all, _ := listAll(t, st, store.Query{})
	for _, in := range all {
		if in.Status.Terminal() && !in.CreatedAt.Before(from) && !in.CreatedAt.After(to) {
			want = append(want, in.ID)
		}
	}
	if !slices.Equal(want, []string{"q-00", "q-01", "q-03"}) {
		t.Fatalf("test setup: finished instances in range = %v", want)
	}
	n, err = st.PurgeInstances(ctx, store.PurgeFilter{CreatedFrom: from, CreatedTo: to})
	if err != nil || n != 3 {
		t.Fatalf("PurgeInstances(created range) = %d, %v; want 3", n, err)
	}
	if got := remaining(); !slices.Equal(got, []string{"q-04", "q-05", "q-06", "q-07"}) {
		t.Fatalf("after purging the range: %v", got)
	}

	n, err = st.PurgeInstances(ctx, store.PurgeFilter{})
	if err != nil || n != 2 {
		t.Fatalf("PurgeInstances(all) = %d, %v; want 2 (q-04, q-05)", n, err)
	}
	got := remaining()
	if !slices.Equal(got, []string{"q-06", "q-07"}) && !slices.Equal(got, []string{"q-07", "q-06"}) {
		t.Fatalf("after purging everything finished: %v (purged %d), want only the active q-06 and q-07", got, n)
	}
	if n, err := st.PurgeInstances(ctx, store.PurgeFilter{}); err != nil || n != 0 {
		t.Fatalf("second PurgeInstances = %d, %v; want 0", n, err)
	}
}

// testListByteBound: Query.MaxBytes ends a page once it holds the bound, the token continues
// after it, and following the tokens lists every instance once, in order.
func (s suite) testListByteBound(t *testing.T) {
	st := s.open(t)
	input := []byte(`"` + strings.Repeat("x", 1000) + `"`)
	var want []store.Instance
	for i := range 12 {
		id := fmt.Sprintf("b-%02d", i)
		inst := newInstance(id)
		inst.Input = input
		if err := st.CreateInstance(ctxOf(t), inst, startMessage(id), store.ReuseNever); err != nil {
			t.Fatal(err)
		}
		want = append(want, mustGet(t, st, id))
	}
	sortByCreated(want)
	one := want[0].Size()
	if one < len(input) {
		t.Fatalf("Size() = %d, less than the input alone (%d bytes)", one, len(input))
	}
	sizes := func(q store.Query) (all []store.Instance, lens []int) {
		t.Helper()
		for range 100 {
			page, next, err := st.ListInstances(ctxOf(t), q)
			if err != nil {
				t.Fatal(err)
			}
			all, lens = append(all, page...), append(lens, len(page))
			if next == "" {
				return all, lens
			}
			q.ContinuationToken = next
		}
		t.Fatal("ListInstances never returned an empty token")
		return nil, nil
	}
	for _, tc := range []struct {
		name string
		q    store.Query
		lens []int
	}{
		// 3.5 instances' worth: a page ends with the instance that reaches the bound.
		{"bound of 3.5 instances", store.Query{MaxBytes: 3*one + one/2}, []int{4, 4, 4}},
		{"bound of exactly 3", store.Query{MaxBytes: 3 * one}, []int{3, 3, 3, 3}},
		{"bound below one instance", store.Query{MaxBytes: 1}, []int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
		{"page size first", store.Query{MaxBytes: 100 * one, PageSize: 5}, []int{5, 5, 2}},
		{"bound of 5, page size 4", store.Query{MaxBytes: 5 * one, PageSize: 4}, []int{4, 4, 4}},
		{"newest first", store.Query{MaxBytes: 5*one + 1, NewestFirst: true}, []int{6, 6}},
	} {
		all, lens := sizes(tc.q)
		order := ids(want)
		if tc.q.NewestFirst {
			slices.Reverse(order)
		}
		if !slices.Equal(lens, tc.lens) || !slices.Equal(ids(all), order) {
			t.Errorf("%s: pages of %v listing %v; want pages of %v listing %v", tc.name, lens, ids(all), tc.lens, order)
		}
	}
	// Without payloads the instances are small, so the same bound holds all of them.
	if _, lens := sizes(store.Query{MaxBytes: 3*one + one/2, WithoutPayloads: true}); !slices.Equal(lens, []int{12}) {
		t.Errorf("without payloads: pages of %v, want one page of 12", lens)
	}
}

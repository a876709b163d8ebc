package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/reprise-dev/reprise/store"
)

// entities are the entity names the suite's entity claims list. "orchestrator" is also the name
// of the suite's orchestrations, so that every entity test also checks that claims keep to
// their kind.
var entities = store.Names{"counter", "orchestrator", "other"}

func claimEntities(t *testing.T, s store.Store, owner string, max int, lease time.Duration) []store.OrchestrationWork {
	t.Helper()
	w, err := s.ClaimEntities(ctxOf(t), owner, entities, max, lease)
	if err != nil {
		t.Fatalf("ClaimEntities(%q): %v", owner, err)
	}
	for _, x := range w {
		if x.Instance.Kind != store.KindEntity {
			t.Fatalf("ClaimEntities returned %q of kind %s", x.Instance.ID, x.Instance.Kind)
		}
		if c := x.Claim(); c.Kind != store.EntityWorkKind {
			t.Fatalf("the claim of entity %q has work kind %s, want entity", x.Instance.ID, c.Kind)
		}
	}
	return w
}

// claimEntity claims with a long lease and returns the work of entity id, failing if it is
// absent; other entities it happened to claim are released untouched.
func claimEntity(t *testing.T, s store.Store, owner, id string) store.OrchestrationWork {
	t.Helper()
	var found *store.OrchestrationWork
	for _, w := range claimEntities(t, s, owner, 100, longLease) {
		if w.Instance.ID == id {
			found = &w
			continue
		}
		mustCommit(t, s, store.Episode{Lease: w.Lease, Instance: w.Instance})
	}
	if found == nil {
		t.Fatalf("ClaimEntities did not return entity %q", id)
	}
	return *found
}

// batch is consumeAll for an entity's batch, whose commit sets the update time (the time of the
// entity's last operation) to now, as the engine's do.
func batch(w store.OrchestrationWork) store.Episode {
	e := consumeAll(w)
	e.Instance.UpdatedAt = time.Time{}
	return e
}

func signal(id, data string) store.Message {
	return store.Message{InstanceID: id, Data: []byte(data)}
}

func mustSendEntities(t *testing.T, s store.Store, msgs ...store.Message) {
	t.Helper()
	if err := s.SendEntityMessages(ctxOf(t), msgs); err != nil {
		t.Fatalf("SendEntityMessages: %v", err)
	}
}

func messageData(ms []store.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = string(m.Data)
	}
	return out
}

// testEntityCreatedByMessage: the first message to an entity creates it (kind entity, its name
// from the ID, running, no state); later messages leave it as it is.
func (s suite) testEntityCreatedByMessage(t *testing.T) {
	st := s.open(t)
	ctx := ctxOf(t)
	id := store.EntityInstanceID("Counter", "Key@With@Ats")
	if _, err := st.GetInstance(ctx, id); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetInstance before any message: %v, want ErrNotFound", err)
	}
	before := time.Now().Add(-time.Second)
	mustSendEntities(t, st, signal(id, "first"))
	got := mustGet(t, st, id)
	if got.Kind != store.KindEntity || got.Name != "counter" || got.Status != store.StatusRunning ||
		got.Output != nil || got.ExecutionID != "" || got.ParentID != "" || got.HistoryLen != 0 {
		t.Fatalf("entity after its first message = %+v; want kind entity, name counter, running, no state", got)
	}
	if got.CreatedAt.Before(before) || !got.CreatedAt.Equal(got.UpdatedAt) {
		t.Fatalf("entity created at %v, updated at %v: want both now", got.CreatedAt, got.UpdatedAt)
	}
	if h := mustHistory(t, st, id); len(h) != 0 {
		t.Fatalf("history of a new entity = %q, want none", h)
	}
	mustSendEntities(t, st, signal(id, "second"))
	again := mustGet(t, st, id)
	if !again.CreatedAt.Equal(got.CreatedAt) || !again.UpdatedAt.Equal(got.UpdatedAt) || again.Kind != store.KindEntity {
		t.Fatalf("a second message changed the entity: %+v, was %+v", again, got)
	}
	w := claimEntity(t, st, "n", id)
	if d := messageData(w.Messages); !slices.Equal(d, []string{"first", "second"}) {
		t.Fatalf("claimed messages %q, want [first second]", d)
	}
	if w.Instance.Kind != store.KindEntity || w.Instance.Name != "counter" {
		t.Fatalf("claimed instance %+v", w.Instance)
	}
}

// testEntityMessageOrder: messages are delivered in the order sent, across calls and within
// one, to each of several entities.
func (s suite) testEntityMessageOrder(t *testing.T) {
	st := s.open(t)
	a, b := store.EntityInstanceID("counter", "a"), store.EntityInstanceID("counter", "b")
	mustSendEntities(t, st, signal(a, "a1"), signal(b, "b1"), signal(a, "a2"))
	mustSendEntities(t, st, signal(b, "b2"))
	mustSendEntities(t, st, signal(a, "a3"), signal(b, "b3"))
	work := claimEntities(t, st, "n", 10, longLease)
	if ids := workIDs(work); !slices.Equal(ids, []string{a, b}) {
		t.Fatalf("claimed %q, want [%s %s]", ids, a, b)
	}
	for i, want := range [][]string{{"a1", "a2", "a3"}, {"b1", "b2", "b3"}} {
		ms := work[i].Messages
		if d := messageData(ms); !slices.Equal(d, want) {
			t.Fatalf("messages of %s = %q, want %q", work[i].Instance.ID, d, want)
		}
		if !slices.IsSorted(messageIDs(ms)) {
			t.Fatalf("messages of %s not in ID order: %v", work[i].Instance.ID, messageIDs(ms))
		}
	}
}

// testEntityInvalidTargets: a call with any target that is not an entity's ID sends nothing, and
// a commit with one applies nothing.
func (s suite) testEntityInvalidTargets(t *testing.T) {
	st := s.open(t)
	ctx := ctxOf(t)
	valid := store.EntityInstanceID("counter", "v")
	mustCreate(t, st, "plain")
	for _, bad := range []string{"plain", "@Counter@v", "@@k", "@counter", "", "@counter@\x00"} {
		err := st.SendEntityMessages(ctx, []store.Message{signal(valid, "x"), signal(bad, "y")})
		wantErr(t, "SendEntityMessages to "+bad, err, store.ErrInvalidArgument)
	}
	if _, err := st.GetInstance(ctx, valid); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused SendEntityMessages created its valid target: %v", err)
	}
	w := claimID(t, st, "n", "plain")
	e := consumeAll(w)
	e.EntityMessages = []store.Message{signal(valid, "x"), signal("plain", "y")}
	wantErr(t, "commit with an entity message to an orchestration's ID", st.CommitEpisode(ctx, e), store.ErrInvalidArgument)
	if _, err := st.GetInstance(ctx, valid); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused commit created an entity: %v", err)
	}
	e.EntityMessages = e.EntityMessages[:1]
	mustCommit(t, st, e) // the lease still holds: nothing was applied
	if got := mustGet(t, st, valid); got.Kind != store.KindEntity {
		t.Fatalf("entity = %+v", got)
	}

	// An entity's ID that an orchestration holds gets no entity messages: they are dropped, as
	// messages to an instance that does not exist are, and the orchestration is left as it is.
	held := store.EntityInstanceID("counter", "held")
	mustCreate(t, st, held)
	mustSendEntities(t, st, signal(held, "dropped"), signal(valid, "kept"))
	if got := mustGet(t, st, held); got.Kind != store.KindOrchestration || got.Name != "orchestrator" {
		t.Fatalf("an entity message changed the orchestration holding its ID: %+v", got)
	}
	if d := messageData(claimID(t, st, "n", held).Messages); !slices.Equal(d, []string{"started:" + held}) {
		t.Fatalf("messages of the orchestration holding an entity's ID = %q, want its start only", d)
	}
	if d := messageData(claimEntity(t, st, "n", valid).Messages); !slices.Equal(d, []string{"x", "kept"}) {
		t.Fatalf("messages of %s = %q, want [x kept]", valid, d)
	}
}

// testEntityClaimSeparation: an orchestrator and an entity that share a name are claimed only
// by their own kind's claim, whatever path delivered their messages; entities are not
// unclaimed orchestration work.
func (s suite) testEntityClaimSeparation(t *testing.T) {
	st := s.open(t)
	ctx := ctxOf(t)
	ent := store.EntityInstanceID("orchestrator", "k")
	mustCreate(t, st, "orch")
	mustSendEntities(t, st, signal(ent, "op"))

	u, err := st.Unclaimed(ctx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(u) != 1 || u[0].Kind != store.OrchestrationWorkKind || u[0].Count != 1 {
		t.Fatalf("Unclaimed = %+v, want the one orchestration and no entity", u)
	}

	for _, names := range []store.Names{{"orchestrator"}, store.AllNamesExcept()} {
		o, err := st.ClaimOrchestrations(ctx, "n", names, 10, longLease)
		if err != nil {
			t.Fatal(err)
		}
		if ids := workIDs(o); !slices.Equal(ids, []string{"orch"}) {
			t.Fatalf("ClaimOrchestrations(%q) = %q, want [orch]", names, ids)
		}
		en, err := st.ClaimEntities(ctx, "n", names, 10, longLease)
		if err != nil {
			t.Fatal(err)
		}
		if ids := workIDs(en); !slices.Equal(ids, []string{ent}) {
			t.Fatalf("ClaimEntities(%q) = %q, want [%s]", names, ids, ent)
		}
		if en[0].Instance.Kind != store.KindEntity || o[0].Instance.Kind != store.KindOrchestration {
			t.Fatalf("kinds: orchestration %s, entity %s", o[0].Instance.Kind, en[0].Instance.Kind)
		}
		// Give both back, messages unconsumed, for the next round.
		mustCommit(t, st, store.Episode{Lease: o[0].Lease, Instance: o[0].Instance})
		mustCommit(t, st, store.Episode{Lease: en[0].Lease, Instance: en[0].Instance})
	}

	// Messages to an entity by the other paths (an episode's Messages, SendMessage) land in the
	// entity's queue too.
	en := claimEntity(t, st, "n", ent)
	mustCommit(t, st, batch(en))
	o := claimID(t, st, "n", "orch")
	e := consumeAll(o)
	e.Messages = []store.Message{signal(ent, "from-episode")}
	mustCommit(t, st, e)
	if err := st.SendMessage(ctx, signal(ent, "sent")); err != nil {
		t.Fatalf("SendMessage to an entity: %v", err)
	}
	if c := claim(t, st, "n", 10, longLease); len(c) != 0 {
		t.Fatalf("ClaimOrchestrations took %q, which has only entity messages", workIDs(c))
	}
	en = claimEntity(t, st, "n", ent)
	if d := messageData(en.Messages); !slices.Equal(d, []string{"from-episode", "sent"}) {
		t.Fatalf("entity messages = %q, want [from-episode sent]", d)
	}
}

// testEntityLeases: an entity claim is exclusive while its lease lives, renewable, and taken
// over once it expires; the old holder's commit is then fenced off.
func (s suite) testEntityLeases(t *testing.T) {
	st := s.open(t)
	ctx := ctxOf(t)
	x, y := store.EntityInstanceID("counter", "x"), store.EntityInstanceID("counter", "y")
	mustSendEntities(t, st, signal(x, "op"))
	a := claimEntities(t, st, "a", 10, longLease)
	if ids := workIDs(a); !slices.Equal(ids, []string{x}) {
		t.Fatalf("claimed %q, want [%s]", ids, x)
	}
	if b := claimEntities(t, st, "b", 10, longLease); len(b) != 0 {
		t.Fatalf("a leased entity was claimed again: %q", workIDs(b))
	}
	mustSendEntities(t, st, signal(x, "more"))
	if b := claimEntities(t, st, "b", 10, longLease); len(b) != 0 {
		t.Fatal("a leased entity was claimed again after a new message")
	}

	// Expiry and fencing.
	mustSendEntities(t, st, signal(y, "op"))
	short := claimEntities(t, st, "a", 10, shortLease)
	if ids := workIDs(short); !slices.Equal(ids, []string{y}) {
		t.Fatalf("claimed %q, want [%s]", ids, y)
	}
	var taken []store.OrchestrationWork
	Eventually(t, "the expired entity lease to be claimable", func() bool {
		taken = claimEntities(t, st, "b", 10, longLease)
		return len(taken) == 1
	})
	if taken[0].Instance.ID != y || taken[0].Lease == short[0].Lease || len(taken[0].Messages) != 1 {
		t.Fatalf("reclaim = %+v", taken[0])
	}
	stale := batch(short[0])
	stale.Instance.Output = []byte(`"stale"`)
	stale.ResetHistory = true
	stale.History = chunks("stale")
	stale.EntityMessages = []store.Message{signal(store.EntityInstanceID("counter", "from-stale"), "x")}
	wantErr(t, "commit of an entity batch after its lease was taken over", st.CommitEpisode(ctx, stale), store.ErrLeaseLost)
	if got := mustGet(t, st, y); got.Output != nil || got.HistoryLen != 0 {
		t.Fatalf("a fenced batch was applied: %+v", got)
	}
	if _, err := st.GetInstance(ctx, store.EntityInstanceID("counter", "from-stale")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a fenced batch created an entity: %v", err)
	}
	e := batch(taken[0])
	e.Instance.Output = []byte(`"fresh"`)
	mustCommit(t, st, e)
	if got := mustGet(t, st, y); string(got.Output) != `"fresh"` {
		t.Fatalf("output = %s", got.Output)
	}

	// Renewal of an entity claim.
	z := store.EntityInstanceID("counter", "z")
	mustSendEntities(t, st, signal(z, "op"))
	const lease = 200 * time.Millisecond
	start := time.Now()
	r := claimEntities(t, st, "a", 1, lease)
	if ids := workIDs(r); !slices.Equal(ids, []string{z}) {
		t.Fatalf("claimed %q, want [%s]", ids, z)
	}
	if err := st.RenewLeases(ctx, "a", []store.Claim{r[0].Claim()}, longLease); err != nil {
		t.Fatalf("RenewLeases of an entity claim: %v", err)
	}
	waitPast(start.Add(2 * lease))
	if c := claimEntities(t, st, "b", 10, longLease); len(c) != 0 {
		t.Fatalf("a renewed entity lease was taken after its original expiry: %q", workIDs(c))
	}
	mustCommit(t, st, batch(r[0]))

	// ReleaseLeases releases entity leases too.
	if err := st.ReleaseLeases(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if c := claimEntities(t, st, "b", 10, longLease); !slices.Equal(workIDs(c), []string{x}) {
		t.Fatalf("after ReleaseLeases, claimed %q, want [%s]", workIDs(c), x)
	}
}

// testEntityBatch: a batch commit resets the entity's history to one chunk, keeps its state in
// Output, sends entity messages (creating the entity they go to) and messages to an
// orchestration, and cannot change the entity's kind.
func (s suite) testEntityBatch(t *testing.T) {
	st := s.open(t)
	b, c := store.EntityInstanceID("counter", "b"), store.EntityInstanceID("counter", "c")
	mustCreate(t, st, "orch")
	mustSendEntities(t, st, signal(b, "add 1"), signal(b, "add 2"))
	for round, state := range []string{`{"n":3}`, `{"n":4}`} {
		w := claimEntity(t, st, "n", b)
		e := batch(w)
		e.Instance.Kind = store.KindOrchestration // commits cannot change the kind
		e.Instance.Output = []byte(state)
		e.Instance.CustomStatus = []byte(`{"locked":false}`)
		e.ResetHistory = true
		e.History = chunks("scheduler " + state)
		e.EntityMessages = []store.Message{signal(c, "from b")}
		e.Messages = []store.Message{signal("orch", "response")}
		mustCommit(t, st, e)
		got := mustGet(t, st, b)
		if got.Kind != store.KindEntity || got.Status != store.StatusRunning || string(got.Output) != state ||
			string(got.CustomStatus) != `{"locked":false}` || got.HistoryLen != 1 {
			t.Fatalf("round %d: entity after its batch = %+v", round, got)
		}
		if h := mustHistory(t, st, b); !equalChunks(h, chunks("scheduler "+state)) {
			t.Fatalf("round %d: history = %q, want the one chunk of the batch", round, h)
		}
		if got := mustGet(t, st, c); got.Kind != store.KindEntity || got.Name != "counter" {
			t.Fatalf("round %d: entity created by a batch = %+v", round, got)
		}
		if round == 0 {
			mustSendEntities(t, st, signal(b, "add 1"))
		}
	}
	work := claimEntities(t, st, "n", 10, longLease)
	if ids := workIDs(work); !slices.Equal(ids, []string{c}) {
		t.Fatalf("claimed %q, want only %s (b's messages were consumed)", ids, c)
	}
	if d := messageData(work[0].Messages); !slices.Equal(d, []string{"from b", "from b"}) {
		t.Fatalf("messages of %s = %q", c, d)
	}
	o := claimID(t, st, "n", "orch")
	if d := messageData(o.Messages); !slices.Equal(d, []string{"started:orch", "response", "response"}) {
		t.Fatalf("orchestration messages = %q", d)
	}
}

// testEntityScheduled: an entity message visible later is not claimable before then, and
// NextVisibleAt reports it.
func (s suite) testEntityScheduled(t *testing.T) {
	st := s.open(t)
	ctx := ctxOf(t)
	later := store.EntityInstanceID("counter", "later")
	at := time.Now().Add(time.Hour).Truncate(time.Microsecond)
	mustSendEntities(t, st, store.Message{InstanceID: later, Data: []byte("scheduled"), VisibleAt: at})
	if got := mustGet(t, st, later); got.Kind != store.KindEntity {
		t.Fatalf("a scheduled message did not create its entity: %+v", got)
	}
	if w := claimEntities(t, st, "n", 10, longLease); len(w) != 0 {
		t.Fatalf("claimed %q before its message was visible", workIDs(w))
	}
	next, err := st.NextVisibleAt(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !next.Equal(at) {
		t.Fatalf("NextVisibleAt = %v, want %v", next, at)
	}

	soon := store.EntityInstanceID("counter", "soon")
	visible := time.Now().Add(300 * time.Millisecond)
	mustSendEntities(t, st, store.Message{InstanceID: soon, Data: []byte("soon"), VisibleAt: visible})
	var w []store.OrchestrationWork
	Eventually(t, "the scheduled entity message to become claimable", func() bool {
		w = claimEntities(t, st, "n", 10, longLease)
		return len(w) > 0
	})
	if time.Now().Before(visible) {
		t.Fatal("an entity message was claimed before it was visible")
	}
	if ids := workIDs(w); !slices.Equal(ids, []string{soon}) {
		t.Fatalf("claimed %q, want [%s]", ids, soon)
	}
}

// testDeleteEntity: DeleteEntity removes an entity only when it has no state, no lease, no
// message and the update time the caller saw.
func (s suite) testDeleteEntity(t *testing.T) {
	st := s.open(t)
	ctx := ctxOf(t)
	del := func(id string, at time.Time) bool {
		t.Helper()
		removed, err := st.DeleteEntity(ctx, id, at)
		if err != nil {
			t.Fatalf("DeleteEntity(%q): %v", id, err)
		}
		return removed
	}
	id := store.EntityInstanceID("counter", "d")
	if del(id, time.Now()) {
		t.Fatal("DeleteEntity removed an entity that does not exist")
	}
	orch := mustCreate(t, st, "orch")
	if del("orch", mustGet(t, st, "orch").UpdatedAt) {
		t.Fatal("DeleteEntity removed an orchestration")
	}
	mustGet(t, st, orch.ID)

	mustSendEntities(t, st, signal(id, "op"))
	if del(id, mustGet(t, st, id).UpdatedAt) {
		t.Fatal("DeleteEntity removed an entity with a message in its inbox")
	}
	w := claimEntity(t, st, "n", id)
	if del(id, w.Instance.UpdatedAt) {
		t.Fatal("DeleteEntity removed a leased entity")
	}
	e := batch(w)
	e.Instance.Output = []byte(`1`)
	mustCommit(t, st, e)
	if del(id, mustGet(t, st, id).UpdatedAt) {
		t.Fatal("DeleteEntity removed an entity with state")
	}

	// State cleared by a batch: removable, but only at the update time of that batch.
	mustSendEntities(t, st, signal(id, "delete state"))
	e = batch(claimEntity(t, st, "n", id))
	e.Instance.Output = nil
	e.ResetHistory = true
	e.History = chunks("scheduler")
	mustCommit(t, st, e)
	seen := mustGet(t, st, id)
	if seen.Output != nil {
		t.Fatalf("output = %s, want none", seen.Output)
	}
	mustSendEntities(t, st, signal(id, "again"))
	mustCommit(t, st, batch(claimEntity(t, st, "n", id)))
	if now := mustGet(t, st, id); now.UpdatedAt.Equal(seen.UpdatedAt) {
		t.Fatalf("a batch left the update time at %v", now.UpdatedAt)
	}
	if del(id, seen.UpdatedAt) {
		t.Fatal("DeleteEntity removed an entity updated since the caller looked")
	}
	if !del(id, mustGet(t, st, id).UpdatedAt) {
		t.Fatal("DeleteEntity did not remove an entity without state, lease or messages")
	}
	if _, err := st.GetInstance(ctx, id); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetInstance of a deleted entity: %v, want ErrNotFound", err)
	}
	if _, err := st.History(ctx, id); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("History of a deleted entity: %v, want ErrNotFound", err)
	}
	if del(id, seen.UpdatedAt) {
		t.Fatal("a second DeleteEntity removed something")
	}
	// A new message brings it back, fresh.
	mustSendEntities(t, st, signal(id, "reborn"))
	if got := mustGet(t, st, id); got.HistoryLen != 0 || got.Output != nil {
		t.Fatalf("entity after deletion and a new message = %+v", got)
	}
	if h := mustHistory(t, st, id); len(h) != 0 {
		t.Fatalf("a deleted entity's history came back: %q", h)
	}
}

// testEntityQueries: queries list one kind; entities by update time, without the transient,
// by ID prefix, by name and by page.
func (s suite) testEntityQueries(t *testing.T) {
	st := s.open(t)
	ctx := ctxOf(t)
	list := func(q store.Query) []string {
		t.Helper()
		page, _, err := st.ListInstances(ctx, q)
		if err != nil {
			t.Fatalf("ListInstances(%+v): %v", q, err)
		}
		for _, in := range page {
			if in.Kind != q.Kind {
				t.Fatalf("ListInstances of kind %s returned %q of kind %s", q.Kind, in.ID, in.Kind)
			}
		}
		return ids(page)
	}
	q1, q2, q3 := store.EntityInstanceID("counter", "q1"), store.EntityInstanceID("counter", "q2"), store.EntityInstanceID("other", "q3")
	mustCreate(t, st, "o1")
	mustSendEntities(t, st, signal(q1, "op"))
	mustSendEntities(t, st, signal(q2, "op"))
	mustSendEntities(t, st, signal(q3, "op"))
	mustCreate(t, st, "o2")
	e := batch(claimEntity(t, st, "n", q1))
	e.Instance.Output = []byte(`"state"`)
	mustCommit(t, st, e)
	updated := mustGet(t, st, q1).UpdatedAt

	if got := list(store.Query{}); !slices.Equal(got, []string{"o1", "o2"}) {
		t.Fatalf("a query without kind listed %q, want the orchestrations only", got)
	}
	counts, err := st.CountInstances(ctx, store.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(counts) != 1 || counts[store.StatusPending] != 2 {
		t.Fatalf("CountInstances of orchestrations = %v, want 2 pending", counts)
	}
	counts, err = st.CountInstances(ctx, store.Query{Kind: store.KindEntity})
	if err != nil {
		t.Fatal(err)
	}
	if len(counts) != 1 || counts[store.StatusRunning] != 3 {
		t.Fatalf("CountInstances of entities = %v, want 3 running", counts)
	}
	counts, err = st.CountInstances(ctx, store.Query{Kind: store.KindEntity, SkipTransient: true})
	if err != nil {
		t.Fatal(err)
	}
	if counts[store.StatusRunning] != 1 {
		t.Fatalf("CountInstances of entities with state = %v, want 1", counts)
	}
	all := []string{q1, q2, q3}
	for _, tc := range []struct {
		what string
		q    store.Query
		want []string
	}{
		{"entities", store.Query{Kind: store.KindEntity}, all},
		{"entities newest first", store.Query{Kind: store.KindEntity, NewestFirst: true}, []string{q3, q2, q1}},
		{"entities with state", store.Query{Kind: store.KindEntity, SkipTransient: true}, []string{q1}},
		{"updated from the batch", store.Query{Kind: store.KindEntity, UpdatedFrom: updated}, []string{q1}},
		{"updated before the batch", store.Query{Kind: store.KindEntity, UpdatedTo: updated}, []string{q2, q3}},
		{"updated up to just after the batch", store.Query{Kind: store.KindEntity, UpdatedTo: updated.Add(time.Microsecond)}, all},
		{"updated after the batch", store.Query{Kind: store.KindEntity, UpdatedFrom: updated.Add(time.Microsecond)}, []string{}},
		{"by ID prefix", store.Query{Kind: store.KindEntity, IDPrefix: "@counter@"}, []string{q1, q2}},
		{"by name", store.Query{Kind: store.KindEntity, Name: "OTHER"}, []string{q3}},
		{"running", store.Query{Kind: store.KindEntity, Statuses: []store.Status{store.StatusRunning}}, all},
		{"orchestrations by ID prefix", store.Query{IDPrefix: "@"}, []string{}},
	} {
		if got := list(tc.q); !slices.Equal(got, tc.want) {
			t.Errorf("%s: listed %q, want %q", tc.what, got, tc.want)
		}
	}

	// Paging through the entities, one by one, without payloads.
	var paged []string
	q := store.Query{Kind: store.KindEntity, PageSize: 1, WithoutPayloads: true}
	for range 5 {
		page, next, err := st.ListInstances(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range page {
			if in.Output != nil {
				t.Fatalf("WithoutPayloads listed %q with output %s", in.ID, in.Output)
			}
		}
		paged = append(paged, ids(page)...)
		if next == "" {
			break
		}
		q.ContinuationToken = next
	}
	if !slices.Equal(paged, all) {
		t.Fatalf("paged through %q, want %q", paged, all)
	}
}

// testEntityRefusals: CreateInstance neither creates nor replaces entities, a sub-orchestration
// cannot take an entity's ID, and purges and rewinds leave entities alone.
func (s suite) testEntityRefusals(t *testing.T) {
	st := s.open(t)
	ctx := ctxOf(t)
	id := store.EntityInstanceID("counter", "r")
	inst := newInstance(store.EntityInstanceID("counter", "new"))
	inst.Kind = store.KindEntity
	wantErr(t, "CreateInstance of an entity", st.CreateInstance(ctx, inst, startMessage(inst.ID), store.ReuseAlways), store.ErrInvalidArgument)
	if _, err := st.GetInstance(ctx, inst.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused CreateInstance created %q: %v", inst.ID, err)
	}

	mustSendEntities(t, st, signal(id, "op"))
	e := batch(claimEntity(t, st, "n", id))
	e.Instance.Output = []byte(`"kept"`)
	mustCommit(t, st, e)
	for _, policy := range []store.ReusePolicy{store.ReuseIfFinished, store.ReuseNever, store.ReuseAlways} {
		err := st.CreateInstance(ctx, newInstance(id), startMessage(id), policy)
		wantErr(t, "CreateInstance over an entity", err, store.ErrInstanceExists)
	}
	wantErr(t, "PurgeInstance of an entity", st.PurgeInstance(ctx, id), store.ErrNotFound)
	wantErr(t, "RewindInstance of an entity", st.RewindInstance(ctx, id, store.Message{Data: []byte("rewind")}), store.ErrNotFailed)

	// A sub-orchestration with the entity's ID is a conflict.
	mustCreate(t, st, "parent")
	p := consumeAll(claimID(t, st, "n", "parent"))
	child := newInstance(id)
	p.Starts = []store.Start{{Instance: child, Message: startMessage(id),
		OnConflict: store.Message{InstanceID: "parent", Data: []byte("conflict")}}}
	mustCommit(t, st, p)
	if d := messageData(claimID(t, st, "n", "parent").Messages); !slices.Equal(d, []string{"conflict"}) {
		t.Fatalf("parent's messages = %q, want [conflict]", d)
	}

	mustCreate(t, st, "done")
	finish(t, st, "done", store.StatusCompleted)
	n, err := st.PurgeInstances(ctx, store.PurgeFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("PurgeInstances purged %d, want the one finished orchestration", n)
	}
	got := mustGet(t, st, id)
	if got.Kind != store.KindEntity || string(got.Output) != `"kept"` || got.Name != "counter" {
		t.Fatalf("entity after the refusals = %+v", got)
	}
	if c := claimEntities(t, st, "n", 10, longLease); len(c) != 0 {
		t.Fatalf("the refusals left entity work: %q", workIDs(c))
	}
}

// testEntityWorkSignal: entity work wakes the entity signal: SendEntityMessages, a commit with
// entity messages, a message to an entity by SendMessage, and a batch commit that leaves
// messages that arrived meanwhile.
func (s suite) testEntityWorkSignal(t *testing.T) {
	st := s.open(t)
	ctx := ctxOf(t)
	esig := st.WorkSignal(store.EntityWorkKind)
	id := store.EntityInstanceID("counter", "w")
	drain(esig)
	mustSendEntities(t, st, signal(id, "op"))
	waitSignal(t, esig, "entity signal after SendEntityMessages")

	mustCommit(t, st, batch(claimEntity(t, st, "n", id)))
	mustCreate(t, st, "orch")
	e := consumeAll(claimID(t, st, "n", "orch"))
	e.EntityMessages = []store.Message{signal(id, "from orch")}
	drain(esig)
	mustCommit(t, st, e)
	waitSignal(t, esig, "entity signal after a commit with entity messages")

	w := claimEntity(t, st, "n", id)
	if err := st.SendMessage(ctx, signal(id, "late")); err != nil {
		t.Fatal(err)
	}
	drain(esig)
	mustCommit(t, st, batch(w))
	waitSignal(t, esig, "entity signal after a batch commit that left a message that arrived during the batch")
	w = claimEntity(t, st, "n", id)
	if d := messageData(w.Messages); !slices.Equal(d, []string{"late"}) {
		t.Fatalf("messages = %q, want [late]", d)
	}
	drain(esig)
	mustCommit(t, st, batch(w))
	if err := st.SendMessage(ctx, signal(id, "sent")); err != nil {
		t.Fatal(err)
	}
	waitSignal(t, esig, "entity signal after SendMessage to an entity")
}

package memory

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/reprise-dev/reprise/store"
	"github.com/reprise-dev/reprise/store/storetest"
)

func open(t *testing.T, opts Options) *Store {
	t.Helper()
	s := New(opts)
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	// No OpenHubs: stores made by New share nothing, so there is no common database whose hubs
	// could see each other's data.
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, Options{}) })
}

// clock is a virtual clock that moves only when told.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

var names = store.Names{"o"}

func create(t *testing.T, s *Store, id string, start store.Message) {
	t.Helper()
	inst := store.Instance{ID: id, Name: "o", Status: store.StatusPending, Input: []byte(`"in"`)}
	if err := s.CreateInstance(t.Context(), inst, start, store.ReuseNever); err != nil {
		t.Fatalf("CreateInstance(%q): %v", id, err)
	}
}

func claim(t *testing.T, s *Store, owner string, max int, lease time.Duration) []store.OrchestrationWork {
	t.Helper()
	w, err := s.ClaimOrchestrations(t.Context(), owner, names, max, lease)
	if err != nil {
		t.Fatalf("ClaimOrchestrations: %v", err)
	}
	return w
}

func consumeAll(w store.OrchestrationWork) store.Episode {
	e := store.Episode{Lease: w.Lease, Instance: w.Instance}
	for _, m := range w.Messages {
		e.Consumed = append(e.Consumed, m.ID)
	}
	return e
}

func TestDefaultHub(t *testing.T) {
	if h := open(t, Options{}).Hub(); h != "default" {
		t.Fatalf("Hub() = %q, want default", h)
	}
	if h := open(t, Options{Hub: "h"}).Hub(); h != "h" {
		t.Fatalf("Hub() = %q, want h", h)
	}
}

// TestVirtualClock: the store's clock, not the wall clock, stamps instances, makes timers
// visible and ends leases.
func TestVirtualClock(t *testing.T) {
	c := newClock()
	s := open(t, Options{Now: c.Now})
	ctx := t.Context()
	t0 := c.Now()
	create(t, s, "i", store.Message{Data: []byte("start"), VisibleAt: t0.Add(time.Hour)})
	got, err := s.GetInstance(ctx, "i")
	if err != nil {
		t.Fatal(err)
	}
	if !got.CreatedAt.Equal(t0) || !got.UpdatedAt.Equal(t0) {
		t.Fatalf("created %v, updated %v; want the virtual now %v", got.CreatedAt, got.UpdatedAt, t0)
	}
	if next, err := s.NextVisibleAt(ctx); err != nil || !next.Equal(t0.Add(time.Hour)) {
		t.Fatalf("NextVisibleAt = %v, %v; want %v", next, err, t0.Add(time.Hour))
	}
	if w := claim(t, s, "a", 10, time.Minute); len(w) != 0 {
		t.Fatalf("claimed %d instances before the timer's time", len(w))
	}
	c.Advance(time.Hour)
	if next, err := s.NextVisibleAt(ctx); err != nil || !next.IsZero() {
		t.Fatalf("NextVisibleAt once the timer is due = %v, %v; want none", next, err)
	}
	w := claim(t, s, "a", 10, time.Minute)
	if len(w) != 1 || len(w[0].Messages) != 1 {
		t.Fatalf("claim once the timer is due: %+v, want i with its message", w)
	}

	// The lease holds until the virtual clock passes it, however long that takes in real time.
	c.Advance(59 * time.Second)
	if again := claim(t, s, "b", 10, time.Minute); len(again) != 0 {
		t.Fatal("b claimed an instance under a live lease")
	}
	c.Advance(time.Second)
	again := claim(t, s, "b", 10, time.Minute)
	if len(again) != 1 {
		t.Fatalf("b claimed %d instances after a's lease ran out, want 1", len(again))
	}
	if err := s.CommitEpisode(ctx, consumeAll(w[0])); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("commit under the lost lease: %v, want ErrLeaseLost", err)
	}
	e := consumeAll(again[0])
	e.Instance.UpdatedAt = time.Time{} // the store's now
	e.Tasks = []store.Task{{Name: "act", Data: []byte("x")}}
	if err := s.CommitEpisode(ctx, e); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetInstance(ctx, "i"); !got.UpdatedAt.Equal(c.Now()) {
		t.Fatalf("updated at %v after the commit, want the virtual now %v", got.UpdatedAt, c.Now())
	}

	// Activity leases too.
	acts := store.Names{"act"}
	tw, err := s.ClaimActivities(ctx, "a", acts, 1, time.Second)
	if err != nil || len(tw) != 1 {
		t.Fatalf("ClaimActivities: %d, %v", len(tw), err)
	}
	if more, _ := s.ClaimActivities(ctx, "b", acts, 1, time.Second); len(more) != 0 {
		t.Fatal("b claimed a task under a live lease")
	}
	c.Advance(time.Second)
	if more, _ := s.ClaimActivities(ctx, "b", acts, 1, time.Second); len(more) != 1 {
		t.Fatal("b did not get the task after a's lease ran out")
	}
	if err := s.CompleteActivity(ctx, tw[0].Task.ID, tw[0].Lease, store.Message{Data: []byte("r")}); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("completion under the lost lease: %v, want ErrLeaseLost", err)
	}
}

// TestRenewExtendsLease: a renewal moves the expiry on the store's clock, and a lease renewed
// after it ran out (before anyone claimed the work) holds again.
func TestRenewExtendsLease(t *testing.T) {
	c := newClock()
	s := open(t, Options{Now: c.Now})
	create(t, s, "i", store.Message{Data: []byte("start")})
	w := claim(t, s, "a", 1, time.Second)
	if len(w) != 1 {
		t.Fatalf("claimed %d, want 1", len(w))
	}
	c.Advance(2 * time.Second)
	// The lease ran out; the claim below puts the instance back in its queue, but a renewal
	// that comes first must keep it out.
	if err := s.RenewLeases(t.Context(), "a", []store.Claim{w[0].Claim()}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if again := claim(t, s, "b", 1, time.Minute); len(again) != 0 {
		t.Fatal("b claimed an instance whose lease was renewed")
	}
	c.Advance(time.Minute)
	if again := claim(t, s, "b", 1, time.Minute); len(again) != 1 {
		t.Fatal("b did not get the instance once the renewed lease ran out")
	}
}

// TestNoAliasing: what a caller passes in or gets back shares no memory with what is stored.
func TestNoAliasing(t *testing.T) {
	s := open(t, Options{})
	ctx := t.Context()
	input, data := []byte(`"input"`), []byte("start")
	tags := map[string]string{"k": "v"}
	inst := store.Instance{ID: "i", Name: "o", Status: store.StatusPending, Input: input, Tags: tags}
	if err := s.CreateInstance(ctx, inst, store.Message{Data: data}, store.ReuseNever); err != nil {
		t.Fatal(err)
	}
	input[0], data[0], tags["k"] = 'X', 'X', "changed"
	got, _ := s.GetInstance(ctx, "i")
	if string(got.Input) != `"input"` || got.Tags["k"] != "v" {
		t.Fatalf("stored instance changed with the caller's slices: %+v", got)
	}
	got.Input[0], got.Tags["k"] = 'Y', "changed"
	if again, _ := s.GetInstance(ctx, "i"); string(again.Input) != `"input"` || again.Tags["k"] != "v" {
		t.Fatalf("stored instance changed with a returned copy: %+v", again)
	}

	w := claim(t, s, "n", 1, time.Minute)
	if len(w) != 1 || string(w[0].Messages[0].Data) != "start" {
		t.Fatalf("claim: %+v, want the start message as sent", w)
	}
	w[0].Messages[0].Data[0] = 'Z'
	w[0].Instance.Input[0] = 'Z'
	chunk, out, taskData := []byte("chunk"), []byte(`"out"`), []byte("task")
	e := consumeAll(w[0])
	e.Consumed = nil // keep the message, to read it again
	e.History = [][]byte{chunk}
	e.Instance.Input = []byte(`"input"`)
	e.Instance.Output = out
	e.Tasks = []store.Task{{Name: "act", Data: taskData}}
	if err := s.CommitEpisode(ctx, e); err != nil {
		t.Fatal(err)
	}
	chunk[0], out[0], taskData[0] = 'X', 'X', 'X'
	h, _ := s.History(ctx, "i")
	if len(h) != 1 || string(h[0]) != "chunk" {
		t.Fatalf("history = %q, want [chunk]", h)
	}
	h[0][0] = 'Y'
	if h, _ := s.History(ctx, "i"); string(h[0]) != "chunk" {
		t.Fatalf("history changed with a returned copy: %q", h)
	}
	if got, _ := s.GetInstance(ctx, "i"); string(got.Output) != `"out"` {
		t.Fatalf("output = %s, want \"out\"", got.Output)
	}
	if w := claim(t, s, "n", 1, time.Minute); len(w) != 1 || string(w[0].Messages[0].Data) != "start" {
		t.Fatalf("message changed with a returned copy: %+v", w)
	}
	tw, err := s.ClaimActivities(ctx, "n", store.Names{"act"}, 1, time.Minute)
	if err != nil || len(tw) != 1 || string(tw[0].Task.Data) != "task" {
		t.Fatalf("task claim: %+v, %v; want the task as scheduled", tw, err)
	}

	init := []byte("value")
	v, err := s.Setting(ctx, "s", init)
	if err != nil {
		t.Fatal(err)
	}
	init[0], v[0] = 'X', 'Y'
	if v, _ := s.Setting(ctx, "s", nil); string(v) != "value" {
		t.Fatalf("setting = %q, want value", v)
	}
}

// TestClaimOrderAtScale: with thousands of instances waiting, claims hand them out oldest
// message first, and an instance whose lease ends goes back in its place.
func TestClaimOrderAtScale(t *testing.T) {
	c := newClock()
	s := open(t, Options{Now: c.Now})
	const n = 3000
	t0 := c.Now()
	visible := map[string]time.Time{}
	for _, i := range rand.Perm(n) {
		id := fmt.Sprintf("i%04d", i)
		at := t0.Add(-time.Duration(n-i) * time.Second) // i0000 oldest
		visible[id] = at
		create(t, s, id, store.Message{Data: []byte(id), VisibleAt: at})
	}
	var got []string
	for len(got) < n {
		w := claim(t, s, "n", 7, time.Minute)
		if len(w) == 0 {
			t.Fatalf("claims stopped after %d of %d instances", len(got), n)
		}
		// Within one claim the work comes sorted by ID; by age across claims.
		for _, x := range w {
			got = append(got, x.Instance.ID)
		}
	}
	if !slices.IsSortedFunc(got, func(a, b string) int { return visible[a].Compare(visible[b]) }) {
		t.Fatal("claims did not hand out the oldest messages first")
	}
	if w := claim(t, s, "n", 10, time.Minute); len(w) != 0 {
		t.Fatalf("claimed %d more with everything leased", len(w))
	}
	c.Advance(time.Minute)
	if w := claim(t, s, "m", n+1, time.Minute); len(w) != n {
		t.Fatalf("after the leases ran out, claimed %d, want %d", len(w), n)
	}
}

// TestStaleEntriesCompacted: leases ended by commits and timers consumed before their time do
// not pile up in the heaps while the clock stands still.
func TestStaleEntriesCompacted(t *testing.T) {
	c := newClock()
	s := open(t, Options{Now: c.Now})
	ctx := t.Context()
	create(t, s, "i", store.Message{Data: []byte("start")})
	for i := range 20000 {
		w := claim(t, s, "n", 1, time.Hour)
		if len(w) != 1 {
			t.Fatalf("round %d: claimed %d, want 1", i, len(w))
		}
		e := consumeAll(w[0])
		// A timer far in the future, which the next round consumes before it is due (as an
		// orchestration does with a timer it no longer waits for).
		s.mu.Lock()
		for _, m := range s.instances["i"].inbox {
			if m.m.VisibleAt.After(c.Now()) {
				e.Consumed = append(e.Consumed, m.m.ID)
			}
		}
		s.mu.Unlock()
		e.Messages = []store.Message{{Data: []byte("timer"), VisibleAt: c.Now().Add(time.Hour)}, {Data: []byte("next")}}
		if err := s.CommitEpisode(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	s.mu.Lock()
	leases, timers := len(s.leases), len(s.timers)
	s.mu.Unlock()
	if leases > 5000 || timers > 5000 {
		t.Fatalf("after 20000 episodes the heaps hold %d leases and %d timers; stale entries were not dropped", leases, timers)
	}
	if next, err := s.NextVisibleAt(ctx); err != nil || !next.Equal(c.Now().Add(time.Hour)) {
		t.Fatalf("NextVisibleAt = %v, %v; want the last timer", next, err)
	}
}

// TestObserveTransactions: each write is reported to every observer as an unsynced transaction
// of one, claims are counted with those that leased nothing, and a removed observer hears no more.
func TestObserveTransactions(t *testing.T) {
	s := open(t, Options{})
	var mu sync.Mutex
	var seen, other []store.Transaction
	remove := s.ObserveTransactions(func(tx store.Transaction) {
		mu.Lock()
		seen = append(seen, tx)
		mu.Unlock()
	})
	removeOther := s.ObserveTransactions(func(tx store.Transaction) {
		mu.Lock()
		other = append(other, tx)
		mu.Unlock()
	})
	create(t, s, "a", store.Message{Data: []byte("start")})
	if w := claim(t, s, "n", 1, time.Hour); len(w) != 1 {
		t.Fatalf("claimed %d instances, want 1", len(w))
	}
	if w := claim(t, s, "n", 1, time.Hour); len(w) != 0 {
		t.Fatalf("claimed %d instances under a live lease, want 0", len(w))
	}
	mu.Lock()
	want := []store.Transaction{{Writes: 1}, {Writes: 1, Claims: 1}, {Writes: 1, Claims: 1, EmptyClaims: 1}}
	for i, got := range [][]store.Transaction{seen, other} {
		if len(got) != len(want) {
			t.Fatalf("observer %d saw %d transactions, want %d", i, len(got), len(want))
		}
		for j := range want {
			got[j].Duration = 0
			if got[j] != want[j] {
				t.Fatalf("observer %d, transaction %d = %+v, want %+v", i, j, got[j], want[j])
			}
		}
	}
	mu.Unlock()
	remove()
	remove() // twice is harmless
	create(t, s, "b", store.Message{})
	mu.Lock()
	if len(seen) != 3 || len(other) != 4 {
		t.Fatalf("after removing the first observer: %d and %d transactions, want 3 and 4", len(seen), len(other))
	}
	mu.Unlock()
	removeOther()
	create(t, s, "c", store.Message{})
	mu.Lock()
	defer mu.Unlock()
	if len(other) != 4 {
		t.Fatalf("observed %d transactions after removing every observer, want still 4", len(other))
	}
}

// TestCanceledContext: a call whose context has ended does nothing.
func TestCanceledContext(t *testing.T) {
	s := open(t, Options{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	inst := store.Instance{ID: "x", Name: "o"}
	if err := s.CreateInstance(ctx, inst, store.Message{}, store.ReuseNever); !errors.Is(err, context.Canceled) {
		t.Fatalf("CreateInstance with a canceled context: %v, want context.Canceled", err)
	}
	if _, err := s.GetInstance(t.Context(), "x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the canceled create was applied: %v", err)
	}
}

// TestCloseWakesWatchers: Close fires the watches, and the waiter then finds the store closed.
func TestCloseWakesWatchers(t *testing.T) {
	s := New(Options{})
	create(t, s, "i", store.Message{})
	changed, stop := s.WatchInstance("i")
	defer stop()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	<-changed
	if _, err := s.GetInstance(t.Context(), "i"); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("GetInstance after Close: %v, want ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestWake: Wake sends a wake-up on every kind's signal.
func TestWake(t *testing.T) {
	s := open(t, Options{})
	kinds := []store.WorkKind{store.OrchestrationWorkKind, store.ActivityWorkKind, store.EntityWorkKind}
	var sigs []<-chan struct{}
	for _, k := range kinds {
		sigs = append(sigs, s.WorkSignal(k))
	}
	s.Wake()
	for i, sig := range sigs {
		select {
		case <-sig:
		default:
			t.Fatalf("Wake sent nothing on the %s signal", kinds[i])
		}
	}
}

// TestEarlierMessageMovesInstance: an instance waiting for a timer moves ahead in its queue when
// a message visible now arrives, and one visible later leaves it where it is.
func TestEarlierMessageMovesInstance(t *testing.T) {
	c := newClock()
	s := open(t, Options{Now: c.Now})
	ctx := t.Context()
	create(t, s, "later", store.Message{Data: []byte("timer"), VisibleAt: c.Now().Add(time.Hour)})
	create(t, s, "soon", store.Message{Data: []byte("timer"), VisibleAt: c.Now().Add(time.Minute)})
	if err := s.SendMessage(ctx, store.Message{InstanceID: "later", Data: []byte("much later"), VisibleAt: c.Now().Add(2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if w := claim(t, s, "n", 10, time.Hour); len(w) != 0 {
		t.Fatalf("claimed %d instances with only timers waiting", len(w))
	}
	if err := s.SendMessage(ctx, store.Message{InstanceID: "later", Data: []byte("now")}); err != nil {
		t.Fatal(err)
	}
	w := claim(t, s, "n", 10, time.Hour)
	if len(w) != 1 || w[0].Instance.ID != "later" || len(w[0].Messages) != 1 || string(w[0].Messages[0].Data) != "now" {
		t.Fatalf("claim after a message visible now: %+v, want later with that message only", w)
	}
	c.Advance(time.Minute)
	if w := claim(t, s, "n", 10, time.Hour); len(w) != 1 || w[0].Instance.ID != "soon" {
		t.Fatalf("claim once soon's timer is due: %+v, want soon", w)
	}
}

// TestEntityBacklog: an entity signalled thousands of times before anyone claims it gets them
// all in one claim, in order.
func TestEntityBacklog(t *testing.T) {
	s := open(t, Options{})
	ctx := t.Context()
	id := store.EntityInstanceID("counter", "k")
	const n = 5000
	for i := range n {
		if err := s.SendEntityMessages(ctx, []store.Message{{InstanceID: id, Data: fmt.Appendf(nil, "%d", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	w, err := s.ClaimEntities(ctx, "n", store.Names{"Counter"}, 10, time.Minute)
	if err != nil || len(w) != 1 || len(w[0].Messages) != n {
		t.Fatalf("entity claim: %d items, %v; want the entity with %d messages", len(w), err, n)
	}
	for i, m := range w[0].Messages {
		if string(m.Data) != fmt.Sprint(i) {
			t.Fatalf("message %d is %q, want %d", i, m.Data, i)
		}
	}
}

// TestMergedCompletionVirtualClock: a merged completion judges the instance's inbox by the
// store's clock. The virtual clock is years ahead of the wall clock, so a timer it makes due is
// still in the wall clock's future: only a store that reads its own clock refuses.
func TestMergedCompletionVirtualClock(t *testing.T) {
	c := newClock()
	s := open(t, Options{Now: c.Now})
	ctx := t.Context()
	get := func() store.Instance {
		t.Helper()
		in, err := s.GetInstance(ctx, "i")
		if err != nil {
			t.Fatal(err)
		}
		return in
	}
	// merged is the episode of task aw's result for inst, scheduling one more task, leased.
	merged := func(aw store.ActivityWork, inst store.Instance) store.Episode {
		inst.UpdatedAt = time.Time{} // the store's now
		return store.Episode{
			Instance:   inst,
			History:    [][]byte{[]byte("result")},
			Tasks:      []store.Task{{Name: "act", Data: []byte("next")}},
			LeaseTasks: &store.TaskLease{For: 2 * time.Hour, Tasks: []int{0}},
			Completes:  &store.Completion{TaskID: aw.Task.ID, Lease: aw.Lease, ExecutionID: inst.ExecutionID, HistoryLen: inst.HistoryLen},
		}
	}

	create(t, s, "i", store.Message{Data: []byte("start")})
	w := claim(t, s, "a", 1, time.Minute)
	if len(w) != 1 {
		t.Fatalf("claimed %d, want 1", len(w))
	}
	e := consumeAll(w[0])
	e.Instance.ExecutionID = "exec-1"
	e.History = [][]byte{[]byte("first")}
	e.Messages = []store.Message{{Data: []byte("timer"), VisibleAt: c.Now().Add(time.Hour)}}
	e.Tasks = []store.Task{{Name: "act", Data: []byte("first")}}
	e.LeaseTasks = &store.TaskLease{For: 2 * time.Hour, Tasks: []int{0}}
	if err := s.CommitEpisode(ctx, e); err != nil {
		t.Fatal(err)
	}
	aw := e.LeaseTasks.Leased[0]

	// Before the timer is due: the merged completion holds, stamped with the virtual now.
	c.Advance(30 * time.Minute)
	e = merged(aw, get())
	if err := s.CommitEpisode(ctx, e); err != nil {
		t.Fatalf("merged completion before the timer is due: %v", err)
	}
	if got := get(); got.HistoryLen != 2 || !got.UpdatedAt.Equal(c.Now()) {
		t.Fatalf("after the merged completion: %+v, want two chunks, updated at the virtual now %v", got, c.Now())
	}
	aw = e.LeaseTasks.Leased[0]

	// The timer is due by the store's clock: a claim would deliver it, so the instance is busy.
	c.Advance(30 * time.Minute)
	e = merged(aw, get())
	if err := s.CommitEpisode(ctx, e); !errors.Is(err, store.ErrInstanceBusy) {
		t.Fatalf("merged completion with a due timer: %v, want ErrInstanceBusy", err)
	}
	if e.LeaseTasks.Leased != nil {
		t.Fatal("a refused merged completion reported leased tasks")
	}
	w = claim(t, s, "b", 1, time.Minute)
	if len(w) != 1 || len(w[0].Messages) != 1 || string(w[0].Messages[0].Data) != "timer" {
		t.Fatalf("claim once the timer is due: %+v, want i with the timer alone", w)
	}
	if err := s.CommitEpisode(ctx, consumeAll(w[0])); err != nil {
		t.Fatal(err)
	}
	// The task is still aw's: once the timer's episode is in, the merged completion holds.
	if err := s.CommitEpisode(ctx, merged(aw, get())); err != nil {
		t.Fatalf("merged completion after the timer's episode: %v", err)
	}
}

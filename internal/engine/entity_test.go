package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/reprise-dev/reprise/internal/control"
	"github.com/reprise-dev/reprise/internal/engine"
	"github.com/reprise-dev/reprise/internal/entity"
	"github.com/reprise-dev/reprise/internal/history"
	"github.com/reprise-dev/reprise/internal/storefault"
	"github.com/reprise-dev/reprise/store"
)

// adder is an EntityRunner of one entity name, "adder": each operation adds its input to the
// state. giveBack, when set, decides which batches the runner gives back unrun (as a worker that
// abandons its batch or whose stream drops).
type adder struct {
	mu       sync.Mutex
	batches  int
	ran      map[string]int // request ID → runs
	giveBack func(b entity.Batch) bool
}

func (a *adder) EntityNames() store.Names { return store.Names{"adder"} }

func (a *adder) RunEntityBatch(_ context.Context, b entity.Batch) (entity.Result, func(error), error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.batches++
	if a.giveBack != nil && a.giveBack(b) {
		return entity.Result{}, nil, fmt.Errorf("%w: test runner", engine.ErrGivenBack)
	}
	var n int
	if b.State != nil {
		if err := json.Unmarshal(b.State, &n); err != nil {
			return entity.Result{}, nil, err
		}
	}
	res := entity.Result{}
	for _, r := range b.Requests {
		if a.ran == nil {
			a.ran = map[string]int{}
		}
		a.ran[r.RequestID]++
		var d int
		_ = json.Unmarshal(r.Input, &d)
		n += d
		out, _ := json.Marshal(n)
		res.Results = append(res.Results, entity.OpResult{Output: out})
	}
	res.State, _ = json.Marshal(n)
	return res, nil, nil
}

func (a *adder) runsOf(req string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ran[req]
}

// send delivers an entity event to the adder of key.
func send(t *testing.T, st store.Store, key string, ev history.Event) {
	t.Helper()
	ev.Time = time.Now().UTC()
	m, err := control.Message(store.EntityInstanceID("adder", key), "", ev)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SendEntityMessages(t.Context(), []store.Message{m}); err != nil {
		t.Fatal(err)
	}
}

func add(req string, n int) history.Event {
	return history.Event{ID: -1, Type: history.EntityOperationSignaled, RequestID: req, Name: "add", Input: json.RawMessage(strconv.Itoa(n))}
}

// waitAdder polls the entity until cond holds on its state and summary.
func waitAdder(t *testing.T, st store.Store, key string, cond func(n int, sum entity.Summary) bool) (int, entity.Summary) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		inst, err := st.GetInstance(t.Context(), store.EntityInstanceID("adder", key))
		if err == nil {
			var n int
			_ = json.Unmarshal(inst.Output, &n)
			sum := entity.DecodeSummary(inst.CustomStatus)
			if cond(n, sum) {
				return n, sum
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("entity %s: condition not met (last read %+v, %v)", key, inst, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestEntityBatchGivenBackUnderLock is the failure another backend shows under load: an entity
// batch abandoned by its worker while the entity is locked was never dispatched again, its
// messages stayed queued and its lock leaked. Here the batch is given back, runs again once its
// lease expires, the lock stays with its holder through it, and the backlog runs when the holder
// releases the lock; every operation is applied once.
func TestEntityBatchGivenBackUnderLock(t *testing.T) {
	st := openSQLite(t)
	gaveBack := make(chan struct{})
	var once sync.Once
	a := &adder{giveBack: func(b entity.Batch) bool {
		for _, r := range b.Requests {
			if r.RequestID == "holder-call" {
				given := false
				once.Do(func() { given = true; close(gaveBack) })
				return given
			}
		}
		return false
	}}
	newEngine(t, engine.Options{Store: st, Registry: registry{}, Entities: a, LeaseDuration: time.Second})

	holder := &history.Parent{InstanceID: "holder", ExecutionID: "exec-1"}
	send(t, st, "k", history.Event{ID: -1, Type: history.EntityLockRequested, RequestID: "cs", LockSet: []string{"@adder@k"}, Parent: holder})
	waitAdder(t, st, "k", func(_ int, sum entity.Summary) bool { return sum.LockedBy == "holder" })
	send(t, st, "k", add("s1", 1))
	send(t, st, "k", add("s2", 2))
	waitAdder(t, st, "k", func(_ int, sum entity.Summary) bool { return sum.Backlog == 2 })

	// The holder's call is given back the first time; it runs when the lease has expired.
	call := history.Event{ID: -1, Type: history.EntityOperationCalled, RequestID: "holder-call", Name: "add",
		Input: json.RawMessage("100"), Parent: holder}
	send(t, st, "k", call)
	<-gaveBack
	n, sum := waitAdder(t, st, "k", func(n int, _ entity.Summary) bool { return n == 100 })
	if sum.LockedBy != "holder" || sum.Backlog != 2 {
		t.Fatalf("after the redelivery: %d, %+v; want the lock still held and the backlog kept", n, sum)
	}

	send(t, st, "k", history.Event{ID: -1, Type: history.EntityUnlockSent, RequestID: "cs", Parent: holder})
	n, sum = waitAdder(t, st, "k", func(n int, sum entity.Summary) bool { return sum.LockedBy == "" && sum.Backlog == 0 })
	if n != 103 {
		t.Fatalf("state %d, want 103: the call and then the backlog", n)
	}
	for _, req := range []string{"holder-call", "s1", "s2"} {
		if got := a.runsOf(req); got != 1 {
			t.Fatalf("%s ran %d times, want once (the given-back batch did not run)", req, got)
		}
	}
}

// TestEntityCommitsFailing: batch commits that fail before being applied, or after (a lost
// reply), are retried or run again; every signal is applied exactly once.
func TestEntityCommitsFailing(t *testing.T) {
	fs := storefault.Wrap(openSQLite(t))
	every := func(n int) func(storefault.Call) bool {
		return func(c storefault.Call) bool { return c.N%n == 0 }
	}
	fs.Fail(storefault.Fault{Method: "CommitEpisode", Pick: every(3)})
	fs.Fail(storefault.Fault{Method: "CommitEpisode", Pick: every(5), After: true})
	a := &adder{}
	newEngine(t, engine.Options{Store: fs, Registry: registry{}, Entities: a, LeaseDuration: 2 * time.Second, MaxEntityBatch: 7})
	const n = 200
	for i := range n {
		send(t, fs, strconv.Itoa(i%4), add(fmt.Sprint("r", i), 1))
	}
	for k := range 4 {
		got, _ := waitAdder(t, fs, strconv.Itoa(k), func(v int, _ entity.Summary) bool { return v >= n/4 })
		if got != n/4 {
			t.Fatalf("adder %d counted %d, want exactly %d", k, got, n/4)
		}
	}
	if fs.Failed("CommitEpisode") == 0 {
		t.Fatal("no fault was injected")
	}
}

// TestEntityPartialResults: a runner that returns results for only part of a batch (a gRPC worker
// may) has the rest run in a later batch, in order, each once.
func TestEntityPartialResults(t *testing.T) {
	st := openSQLite(t)
	p := &partial{}
	newEngine(t, engine.Options{Store: st, Registry: registry{}, Entities: p})
	var msgs []store.Message
	for i := range 10 {
		ev := add(fmt.Sprint("r", i), 1)
		ev.Time = time.Now().UTC()
		m, err := control.Message(store.EntityInstanceID("adder", "p"), "", ev)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	if err := st.SendEntityMessages(t.Context(), msgs); err != nil {
		t.Fatal(err)
	}
	got, _ := waitAdder(t, st, "p", func(v int, _ entity.Summary) bool { return v >= 10 })
	if got != 10 {
		t.Fatalf("state %d, want 10", got)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if fmt.Sprint(p.order) != "[r0 r1 r2 r3 r4 r5 r6 r7 r8 r9]" {
		t.Fatalf("operations ran in the order %v", p.order)
	}
}

// partial runs at most two operations of each batch.
type partial struct {
	mu    sync.Mutex
	order []string
}

func (p *partial) EntityNames() store.Names { return store.Names{"adder"} }

func (p *partial) RunEntityBatch(_ context.Context, b entity.Batch) (entity.Result, func(error), error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var n int
	_ = json.Unmarshal(b.State, &n)
	var res entity.Result
	for _, r := range b.Requests[:min(2, len(b.Requests))] {
		p.order = append(p.order, r.RequestID)
		n++
		res.Results = append(res.Results, entity.OpResult{})
	}
	res.State, _ = json.Marshal(n)
	return res, nil, nil
}

// blocked is an EntityRunner whose batches wait until release is closed.
type blocked struct {
	started chan struct{}
	release chan struct{}
	once    sync.Once
}

func (b *blocked) EntityNames() store.Names { return store.Names{"adder"} }

func (b *blocked) RunEntityBatch(ctx context.Context, batch entity.Batch) (entity.Result, func(error), error) {
	b.once.Do(func() { close(b.started) })
	select {
	case <-b.release:
	case <-ctx.Done():
	}
	res := entity.Result{State: batch.State}
	for range batch.Requests {
		res.Results = append(res.Results, entity.OpResult{})
	}
	return res, nil, nil
}

// TestEntitiesDoNotStarveOrchestrations: with every entity slot taken by batches that do not
// finish, orchestrations still run to completion: entity work has slots of its own.
func TestEntitiesDoNotStarveOrchestrations(t *testing.T) {
	st := openSQLite(t)
	var r runs
	b := &blocked{started: make(chan struct{}), release: make(chan struct{})}
	defer close(b.release)
	newEngine(t, engine.Options{Store: st, Registry: chainRegistry(&r), Entities: b, MaxConcurrentEntities: 1,
		MaxConcurrentOrchestrations: 1, MaxConcurrentActivities: 1})
	for i := range 50 {
		send(t, st, strconv.Itoa(i), add(fmt.Sprint("r", i), 1))
	}
	<-b.started
	runChains(t, st, "o", 20, 30*time.Second)
}

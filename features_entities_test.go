package reprise_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reprise-dev/reprise"
)

// counter is the entity of the entity feature tests: "add" adds its input, "get" returns the
// count, "fail" changes the state and signals, then fails (all rolled back), "forward" adds to
// itself and signals "add" to the entity named in the input, "start" starts an orchestration.
var counter = reprise.NewEntity("counter", func(ctx *reprise.EntityContext[int]) (any, error) {
	switch ctx.Operation() {
	case "add":
		var n int
		if err := ctx.GetInput(&n); err != nil {
			return nil, err
		}
		ctx.SetState(ctx.State() + n)
		return ctx.State(), nil
	case "get":
		return ctx.State(), nil
	case "fail":
		ctx.SetState(-1000)
		if err := ctx.SignalEntity(reprise.EntityID{Name: "counter", Key: "victim"}, "add", 1); err != nil {
			return nil, err
		}
		return nil, errors.New("this operation fails on purpose")
	case "panic":
		ctx.SetState(-2000)
		panic("this operation panics on purpose")
	case "forward":
		var to string
		if err := ctx.GetInput(&to); err != nil {
			return nil, err
		}
		ctx.SetState(ctx.State() + 1)
		return nil, ctx.SignalEntity(reprise.EntityID{Name: "counter", Key: to}, "add", 10)
	case "start":
		var id string
		if err := ctx.GetInput(&id); err != nil {
			return nil, err
		}
		_, err := ctx.StartNewOrchestration("hello_from_entity", ctx.ID().Key, reprise.WithInstanceID(id))
		return nil, err
	}
	return nil, fmt.Errorf("counter has no operation %q", ctx.Operation())
})

var helloFromEntity = reprise.NewOrchestrator("hello_from_entity", func(ctx *reprise.OrchestrationContext, key string) (string, error) {
	return "started by " + key, nil
})

// waitEntity polls the entity until cond holds (entities have no completion to wait for).
func waitEntity(t *testing.T, c *reprise.Client, id reprise.EntityID, cond func(m *reprise.EntityMetadata) bool) *reprise.EntityMetadata {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last *reprise.EntityMetadata
	var lastErr error
	for time.Now().Before(deadline) {
		m, err := c.GetEntity(testCtx(t), id)
		if err == nil && cond(m) {
			return m
		}
		last, lastErr = m, err
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("entity %s: condition not met; last read %+v, %v", id, last, lastErr)
	return nil
}

func entityCount(m *reprise.EntityMetadata) int {
	var n int
	_ = m.GetState(&n)
	return n
}

func testEntityCounterConcurrentSignals(t *testing.T, s featureStore) {
	app := s.start(t, []reprise.Definition{counter})
	c := app.Client()
	id := counter.ID("hot")
	const senders, each = 8, 250
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				if err := c.SignalEntity(testCtx(t), id, "add", 1); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	m := waitEntity(t, c, id, func(m *reprise.EntityMetadata) bool { return entityCount(m) >= senders*each })
	if got := entityCount(m); got != senders*each {
		t.Fatalf("count = %d, want exactly %d", got, senders*each)
	}
	if m.LockedBy != "" || m.BacklogSize != 0 || m.ID != (reprise.EntityID{Name: "counter", Key: "hot"}) {
		t.Fatalf("metadata = %+v", m)
	}
}

func testEntityFailedOperationsRollBack(t *testing.T, s featureStore) {
	app := s.start(t, []reprise.Definition{counter})
	c, ctx := app.Client(), testCtx(t)
	id := counter.ID("rollback")
	for _, op := range []struct {
		name  string
		input any
	}{{"add", 5}, {"fail", nil}, {"panic", nil}, {"no-such-operation", nil}, {"add", 2}} {
		if err := c.SignalEntity(ctx, id, op.name, op.input); err != nil {
			t.Fatal(err)
		}
	}
	m := waitEntity(t, c, id, func(m *reprise.EntityMetadata) bool { return entityCount(m) != 5 })
	if got := entityCount(m); got != 7 {
		t.Fatalf("count = %d, want 7: the failed operations' changes must be rolled back", got)
	}
	// The failed operation's signal was dropped with it.
	if _, err := c.GetEntity(ctx, counter.ID("victim")); !errors.Is(err, reprise.ErrEntityNotFound) {
		t.Fatalf("the failed operation's signal was sent: GetEntity(victim) = %v", err)
	}
}

func testEntityDeleteAndQuery(t *testing.T, s featureStore) {
	app := s.start(t, []reprise.Definition{counter})
	c, ctx := app.Client(), testCtx(t)
	for i := range 5 {
		if err := c.SignalEntity(ctx, counter.ID(fmt.Sprintf("k%d", i)), "add", i+1); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		waitEntity(t, c, counter.ID(fmt.Sprintf("k%d", i)), func(m *reprise.EntityMetadata) bool { return entityCount(m) == i+1 })
	}
	if err := c.SignalEntity(ctx, counter.ID("k0"), "delete", nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, err := c.GetEntity(ctx, counter.ID("k0"))
		if errors.Is(err, reprise.ErrEntityNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("k0 still exists after delete: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Paging over the four that exist, with their state.
	var keys []string
	token := ""
	for pages := 0; ; pages++ {
		page, next, err := c.QueryEntities(ctx, reprise.EntityQuery{Name: "Counter", FetchState: true, PageSize: 3, ContinuationToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page {
			if m.State == nil {
				t.Fatalf("%s listed without its state", m.ID)
			}
			keys = append(keys, m.ID.Key)
		}
		if next == "" {
			break
		}
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		token = next
	}
	if fmt.Sprint(keys) != "[k1 k2 k3 k4]" {
		t.Fatalf("listed %v, want [k1 k2 k3 k4] (k0 was deleted)", keys)
	}
	all, _, err := c.QueryEntities(ctx, reprise.EntityQuery{Name: "counter", IncludeTransient: true})
	if err != nil || len(all) != 5 {
		t.Fatalf("with transient entities: %d, %v; want 5", len(all), err)
	}
	few, _, err := c.QueryEntities(ctx, reprise.EntityQuery{Name: "counter", KeyPrefix: "k3"})
	if err != nil || len(few) != 1 || few[0].State != nil {
		t.Fatalf("key prefix k3: %+v, %v; want one, without state", few, err)
	}
	future, _, err := c.QueryEntities(ctx, reprise.EntityQuery{Name: "counter", LastModifiedFrom: time.Now().Add(time.Hour)})
	if err != nil || len(future) != 0 {
		t.Fatalf("modified after an hour from now: %d, %v", len(future), err)
	}
	// Entities are not orchestration instances.
	insts, _, err := c.ListInstances(ctx, reprise.Query{})
	if err != nil || len(insts) != 0 {
		t.Fatalf("ListInstances = %d instances, %v; entities must not be listed", len(insts), err)
	}
	if _, err := c.GetInstance(ctx, counter.ID("k1").String()); !errors.Is(err, reprise.ErrInstanceNotFound) {
		t.Fatalf("GetInstance of an entity = %v, want not found", err)
	}
	if err := c.RaiseEvent(ctx, counter.ID("k1").String(), "x", nil); !errors.Is(err, reprise.ErrInstanceNotFound) {
		t.Fatalf("RaiseEvent to an entity = %v, want not found", err)
	}
	// The deleted one is removed by a clean of empty entities.
	res, err := c.CleanEntityStorage(ctx, reprise.CleanEntityStorageOptions{RemoveEmptyEntities: true, EmptyFor: -1})
	if err != nil || res.EmptyEntitiesRemoved != 1 {
		t.Fatalf("clean = %+v, %v; want the deleted entity removed", res, err)
	}
	all, _, err = c.QueryEntities(ctx, reprise.EntityQuery{Name: "counter", IncludeTransient: true})
	if err != nil || len(all) != 4 {
		t.Fatalf("after the clean: %d, %v; want 4", len(all), err)
	}
}

func testEntityScheduledSignal(t *testing.T, s featureStore) {
	app := s.start(t, []reprise.Definition{counter})
	c, ctx := app.Client(), testCtx(t)
	id := counter.ID("later")
	at := time.Now().Add(300 * time.Millisecond)
	if err := c.SignalEntity(ctx, id, "add", 3, reprise.WithSignalTime(at)); err != nil {
		t.Fatal(err)
	}
	m := waitEntity(t, c, id, func(m *reprise.EntityMetadata) bool { return entityCount(m) == 3 })
	if m.LastModified.Before(at) {
		t.Fatalf("the scheduled signal ran at %v, before its time %v", m.LastModified, at)
	}
}

func testEntitySignalsEntityAndStartsOrchestration(t *testing.T, s featureStore) {
	app := s.start(t, []reprise.Definition{counter, helloFromEntity})
	c, ctx := app.Client(), testCtx(t)
	if err := c.SignalEntity(ctx, counter.ID("a"), "forward", "b"); err != nil {
		t.Fatal(err)
	}
	waitEntity(t, c, counter.ID("b"), func(m *reprise.EntityMetadata) bool { return entityCount(m) == 10 })
	if err := c.SignalEntity(ctx, counter.ID("starter"), "start", "from-entity"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		wctx, cancel := context.WithTimeout(ctx, time.Second)
		inst, err := c.WaitForCompletion(wctx, "from-entity")
		cancel()
		if err == nil {
			var out string
			if json.Unmarshal(inst.Output, &out) != nil || out != "started by starter" {
				t.Fatalf("orchestration output %s", inst.Output)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the entity's orchestration did not complete: %v", err)
		}
	}
}

func testEntityBadInput(t *testing.T, s featureStore) {
	app := s.start(t, []reprise.Definition{counter})
	c, ctx := app.Client(), testCtx(t)
	for _, id := range []reprise.EntityID{{Name: "", Key: "k"}, {Name: "a@b", Key: "k"}, {Name: "counter", Key: "bad\x00key"},
		{Name: "counter", Key: string([]byte{0xff, 0xfe})}} {
		if err := c.SignalEntity(ctx, id, "add", 1); !errors.Is(err, reprise.ErrInvalidArgument) {
			t.Errorf("SignalEntity(%q) = %v, want ErrInvalidArgument", id, err)
		}
	}
	if err := c.SignalEntity(ctx, counter.ID("k"), "add", json.RawMessage("{not json")); !errors.Is(err, reprise.ErrInvalidArgument) {
		t.Errorf("SignalEntity with bad JSON = %v, want ErrInvalidArgument", err)
	}
	if err := c.SignalEntity(ctx, counter.ID("k"), "add", 1, reprise.WithSignalTime(time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC))); !errors.Is(err, reprise.ErrInvalidArgument) {
		t.Errorf("SignalEntity in the year 12000 = %v, want ErrInvalidArgument", err)
	}
	if _, err := c.GetEntity(ctx, counter.ID("never")); !errors.Is(err, reprise.ErrEntityNotFound) {
		t.Errorf("GetEntity(never) = %v, want ErrEntityNotFound", err)
	}
	if _, _, err := c.QueryEntities(ctx, reprise.EntityQuery{ContinuationToken: "forged"}); err == nil {
		t.Errorf("QueryEntities with a forged token = %v", err)
	}
}

// entityFeatures are the entity feature tests, which TestFeatures runs on each store.
var entityFeatures = []struct {
	name string
	test func(t *testing.T, s featureStore)
}{
	{"EntityCounterConcurrentSignals", testEntityCounterConcurrentSignals},
	{"EntityFailedOperationsRollBack", testEntityFailedOperationsRollBack},
	{"EntityDeleteAndQuery", testEntityDeleteAndQuery},
	{"EntityScheduledSignal", testEntityScheduledSignal},
	{"EntitySignalsEntityAndStartsOrchestration", testEntitySignalsEntityAndStartsOrchestration},
	{"EntityBadInput", testEntityBadInput},
	{"EntityBankTransfersUnderCriticalSections", testEntityBankTransfersUnderCriticalSections},
	{"EntityCallsFromOrchestration", testEntityCallsFromOrchestration},
	{"EntityLockReleasedWhenHolderTerminated", testEntityLockReleasedWhenHolderTerminated},
	{"EntityLockReleasedWhenHolderFails", testEntityLockReleasedWhenHolderFails},
	{"EntityUnknownNameRefused", testEntityUnknownNameRefused},
}

// account is the bank account of the critical-section tests: "deposit" adds (a negative amount
// withdraws), "balance" returns the balance.
var account = reprise.NewEntity("account", func(ctx *reprise.EntityContext[int]) (any, error) {
	switch ctx.Operation() {
	case "deposit":
		var n int
		if err := ctx.GetInput(&n); err != nil {
			return nil, err
		}
		ctx.SetState(ctx.State() + n)
		return nil, nil
	case "balance":
		return ctx.State(), nil
	}
	return nil, fmt.Errorf("account has no operation %q", ctx.Operation())
})

type transferInput struct {
	From, To string
	Amount   int
}

// transfer moves money between two accounts inside a critical section: it reads the source's
// balance and withdraws only what is there, so the total never changes and no balance goes
// negative, however many transfers run at once.
var transfer = reprise.NewOrchestrator("transfer", func(ctx *reprise.OrchestrationContext, in transferInput) (bool, error) {
	from, to := account.ID(in.From), account.ID(in.To)
	cs, err := ctx.LockEntities(from, to)
	if err != nil {
		return false, err
	}
	defer cs.Release()
	balance, err := reprise.CallEntity[int](ctx, from, "balance", nil).Await()
	if err != nil {
		return false, err
	}
	if balance < in.Amount {
		return false, nil
	}
	if _, err := reprise.CallEntity[reprise.None](ctx, from, "deposit", -in.Amount).Await(); err != nil {
		return false, err
	}
	if _, err := reprise.CallEntity[reprise.None](ctx, to, "deposit", in.Amount).Await(); err != nil {
		return false, err
	}
	return true, nil
})

func testEntityBankTransfersUnderCriticalSections(t *testing.T, s featureStore) {
	app := s.start(t, []reprise.Definition{account, transfer})
	c, ctx := app.Client(), testCtx(t)
	for _, k := range []string{"alice", "bob"} {
		if err := c.SignalEntity(ctx, account.ID(k), "deposit", 100); err != nil {
			t.Fatal(err)
		}
	}
	const n = 40
	ids := make([]string, n)
	for i := range n {
		in := transferInput{From: "alice", To: "bob", Amount: 7}
		if i%2 == 1 {
			in = transferInput{From: "bob", To: "alice", Amount: 11}
		}
		id, err := transfer.Start(ctx, c, in)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id
	}
	for _, id := range ids {
		output[bool](t, waitDone(t, c, id))
	}
	a := waitEntity(t, c, account.ID("alice"), func(m *reprise.EntityMetadata) bool { return m.LockedBy == "" })
	b := waitEntity(t, c, account.ID("bob"), func(m *reprise.EntityMetadata) bool { return m.LockedBy == "" })
	if total := entityCount(a) + entityCount(b); total != 200 || entityCount(a) < 0 || entityCount(b) < 0 {
		t.Fatalf("alice %d + bob %d = %d, want 200 with neither negative", entityCount(a), entityCount(b), total)
	}
}

func testEntityCallsFromOrchestration(t *testing.T, s featureStore) {
	caller := reprise.NewOrchestrator("entity_caller", func(ctx *reprise.OrchestrationContext, key string) (int, error) {
		id := counter.ID(key)
		if _, err := reprise.CallEntity[int](ctx, id, "add", 5).Await(); err != nil {
			return 0, err
		}
		if err := ctx.SignalEntity(id, "add", 2); err != nil {
			return 0, err
		}
		_, err := reprise.CallEntity[int](ctx, id, "fail", nil).Await()
		var tf *reprise.TaskFailedError
		if !errors.As(err, &tf) || !strings.Contains(tf.Failure.Message, "fails on purpose") {
			return 0, fmt.Errorf("want the operation's failure, got %v", err)
		}
		return reprise.CallEntity[int](ctx, id, "get", nil).Await()
	})
	app := s.start(t, []reprise.Definition{counter, caller})
	c, ctx := app.Client(), testCtx(t)
	id, err := caller.Start(ctx, c, "called")
	if err != nil {
		t.Fatal(err)
	}
	if got := output[int](t, waitDone(t, c, id)); got != 7 {
		t.Fatalf("the orchestration read %d, want 7 (5, then the signal's 2, in order; the failure rolled back)", got)
	}
}

func testEntityLockReleasedWhenHolderTerminated(t *testing.T, s featureStore) {
	holder := reprise.NewOrchestrator("lock_holder", func(ctx *reprise.OrchestrationContext, _ reprise.None) (int, error) {
		if _, err := ctx.LockEntities(counter.ID("locked")); err != nil {
			return 0, err
		}
		// Holds the lock until terminated.
		return reprise.WaitForEvent[int](ctx, "never", 0).Await()
	})
	app := s.start(t, []reprise.Definition{counter, holder})
	c, ctx := app.Client(), testCtx(t)
	id, err := holder.Start(ctx, c, reprise.None{})
	if err != nil {
		t.Fatal(err)
	}
	waitEntityLockedBy(t, c, counter.ID("locked"), id)
	// A signal waits behind the lock.
	if err := c.SignalEntity(ctx, counter.ID("locked"), "add", 1); err != nil {
		t.Fatal(err)
	}
	waitEntityBacklog(t, c, counter.ID("locked"), 1)
	if err := c.Terminate(ctx, id, "test"); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, id, reprise.StatusTerminated)
	m := waitEntity(t, c, counter.ID("locked"), func(m *reprise.EntityMetadata) bool { return m.LockedBy == "" && entityCount(m) == 1 })
	if m.BacklogSize != 0 {
		t.Fatalf("backlog %d after the release, want 0", m.BacklogSize)
	}
}

// waitEntityLockedBy polls the entity (with or without state) until holder holds it.
func waitEntityLockedBy(t *testing.T, c *reprise.Client, id reprise.EntityID, holder string) {
	t.Helper()
	waitTransient(t, c, id, func(m *reprise.EntityMetadata) bool { return m.LockedBy == holder })
}

func waitEntityBacklog(t *testing.T, c *reprise.Client, id reprise.EntityID, n int) {
	t.Helper()
	waitTransient(t, c, id, func(m *reprise.EntityMetadata) bool { return m.BacklogSize == n })
}

// waitTransient is waitEntity for entities that may have no state: it reads them by query.
func waitTransient(t *testing.T, c *reprise.Client, id reprise.EntityID, cond func(m *reprise.EntityMetadata) bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		page, _, err := c.QueryEntities(testCtx(t), reprise.EntityQuery{Name: id.Name, KeyPrefix: id.Key, IncludeTransient: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page {
			if m.ID == id && cond(m) {
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("entity %s: condition not met", id)
}

func testEntityLockReleasedWhenHolderFails(t *testing.T, s featureStore) {
	failing := reprise.NewOrchestrator("failing_holder", func(ctx *reprise.OrchestrationContext, _ reprise.None) (int, error) {
		if _, err := ctx.LockEntities(counter.ID("f1"), counter.ID("f2")); err != nil {
			return 0, err
		}
		if _, err := reprise.CallEntity[int](ctx, counter.ID("f1"), "add", 1).Await(); err != nil {
			return 0, err
		}
		return 0, errors.New("fails inside its critical section")
	})
	app := s.start(t, []reprise.Definition{counter, failing})
	c, ctx := app.Client(), testCtx(t)
	id, err := failing.Start(ctx, c, reprise.None{})
	if err != nil {
		t.Fatal(err)
	}
	if inst := waitDone(t, c, id); inst.Status != reprise.StatusFailed {
		t.Fatalf("status %s, want Failed", inst.Status)
	}
	for _, k := range []string{"f1", "f2"} {
		waitTransient(t, c, counter.ID(k), func(m *reprise.EntityMetadata) bool { return m.LockedBy == "" })
	}
	// Its locks are gone, so it cannot go on from where it was: a rewind is refused.
	if err := c.Rewind(ctx, id, "retry"); !errors.Is(err, reprise.ErrInvalidArgument) || !strings.Contains(err.Error(), "critical section") {
		t.Fatalf("Rewind = %v, want a refusal naming the critical section", err)
	}
}

func testEntityUnknownNameRefused(t *testing.T, s featureStore) {
	app := s.start(t, []reprise.Definition{counter})
	c, ctx := app.Client(), testCtx(t)
	err := c.SignalEntity(ctx, reprise.EntityID{Name: "countr", Key: "typo"}, "add", 1)
	if !errors.Is(err, reprise.ErrNotRegistered) {
		t.Fatalf("SignalEntity to an entity the app does not have = %v, want ErrNotRegistered", err)
	}
	if page, _, err := c.QueryEntities(ctx, reprise.EntityQuery{IncludeTransient: true}); err != nil || len(page) != 0 {
		t.Fatalf("the refused signal left %d entities, %v", len(page), err)
	}
}

package reprise_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
}

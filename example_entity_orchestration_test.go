package reprise_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/reprise-dev/reprise"
)

// exampleCounter is the entity of the examples: "add" adds its input and returns the count,
// "get" returns it.
var exampleCounter = reprise.NewEntity("counter", func(ctx *reprise.EntityContext[int]) (any, error) {
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
	}
	return nil, fmt.Errorf("counter has no operation %q", ctx.Operation())
})

// An entity is defined with its state's type and registered like an orchestrator. Here an
// orchestration signals it three times and then calls it: one sender's messages arrive in order,
// so the call sees the three signals.
func ExampleNewEntity() {
	count := reprise.NewOrchestrator("count", func(ctx *reprise.OrchestrationContext, _ reprise.None) (int, error) {
		visits := exampleCounter.ID("visits")
		for range 3 {
			if err := ctx.SignalEntity(visits, "add", 1); err != nil {
				return 0, err
			}
		}
		return reprise.CallEntity[int](ctx, visits, "get", nil).Await()
	})
	app, stop := runExample(exampleCounter, count)
	defer stop()
	ctx := context.Background()
	id, err := count.Start(ctx, app.Client(), reprise.None{})
	if err != nil {
		log.Fatal(err)
	}
	inst, err := app.Client().WaitForCompletion(ctx, id)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("the orchestration read", string(inst.Output))

	m, err := app.Client().GetEntity(ctx, exampleCounter.ID("visits"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s holds %s\n", m.ID, m.State)
	_, err = app.Client().GetEntity(ctx, exampleCounter.ID("never-signalled"))
	fmt.Println(errors.Is(err, reprise.ErrEntityNotFound))
	// Output:
	// the orchestration read 3
	// @counter@visits holds 3
	// true
}

// A transfer between two accounts as one step: while the critical section holds both
// accounts, no other operation runs on either.
func ExampleOrchestrationContext_LockEntities() {
	type transfer struct {
		From, To string
		Amount   int
	}
	move := reprise.NewOrchestrator("transfer", func(ctx *reprise.OrchestrationContext, t transfer) (bool, error) {
		from, to := exampleCounter.ID(t.From), exampleCounter.ID(t.To)
		section, err := ctx.LockEntities(from, to)
		if err != nil {
			return false, err
		}
		defer section.Release() // or leave it: the locks go when the orchestration ends
		balance, err := reprise.CallEntity[int](ctx, from, "get", nil).Await()
		if err != nil || balance < t.Amount {
			return false, err
		}
		// Calls in a section: only to its entities, one at a time per entity; these are to
		// two entities, so they can run together.
		debit := reprise.CallEntity[int](ctx, from, "add", -t.Amount)
		credit := reprise.CallEntity[int](ctx, to, "add", t.Amount)
		if _, err := reprise.All(ctx, debit, credit).Await(); err != nil {
			return false, err
		}
		return true, nil
	})
	fund := reprise.NewOrchestrator("fund", func(ctx *reprise.OrchestrationContext, n int) (int, error) {
		return reprise.CallEntity[int](ctx, exampleCounter.ID("alice"), "add", n).Await()
	})
	app, stop := runExample(exampleCounter, move, fund)
	defer stop()
	ctx := context.Background()
	c := app.Client()
	run := func(id string, err error) string {
		if err != nil {
			log.Fatal(err)
		}
		inst, err := c.WaitForCompletion(ctx, id)
		if err != nil {
			log.Fatal(err)
		}
		return string(inst.Output)
	}
	fmt.Println("funded:", run(fund.Start(ctx, c, 100)))
	fmt.Println("moved 30:", run(move.Start(ctx, c, transfer{From: "alice", To: "bob", Amount: 30})))
	fmt.Println("moved 500:", run(move.Start(ctx, c, transfer{From: "alice", To: "bob", Amount: 500})))
	for _, k := range []string{"alice", "bob"} {
		m, err := c.GetEntity(ctx, exampleCounter.ID(k))
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s: %s\n", k, m.State)
	}
	// Output:
	// funded: 100
	// moved 30: true
	// moved 500: false
	// alice: 70
	// bob: 30
}

// A client signals an entity and reads it back; entities have no completion to wait for, so the
// example polls.
func ExampleClient_SignalEntity() {
	app, stop := runExample(exampleCounter)
	defer stop()
	ctx := context.Background()
	c := app.Client()
	id := exampleCounter.ID("cats")
	for range 5 {
		if err := c.SignalEntity(ctx, id, "add", 2); err != nil {
			log.Fatal(err)
		}
	}
	for {
		m, err := c.GetEntity(ctx, id)
		if err == nil {
			var n int
			if err := m.GetState(&n); err != nil {
				log.Fatal(err)
			}
			if n == 10 {
				fmt.Println(m.ID.Key, n, m.LockedBy == "")
				break
			}
		}
		time.Sleep(time.Millisecond)
	}
	page, _, err := c.QueryEntities(ctx, reprise.EntityQuery{Name: "counter", FetchState: true})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(page), page[0].ID, string(page[0].State))
	// Output:
	// cats 10 true
	// 1 @counter@cats 10
}

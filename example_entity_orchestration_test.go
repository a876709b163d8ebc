package reprise_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/reprise-dev/reprise"
)

// An orchestration calls a counter entity and awaits the result, then signals a log entity
// without waiting. (It compiles; it runs once entities run end to end.)
func ExampleCallEntity() {
	_ = reprise.NewOrchestrator("count", func(ctx *reprise.OrchestrationContext, n int) (int, error) {
		counter := reprise.EntityID{Name: "counter", Key: "visits"}
		total, err := reprise.CallEntity[int](ctx, counter, "add", n).Await()
		if err != nil {
			var failed *reprise.TaskFailedError
			if errors.As(err, &failed) && failed.Kind == "entity" {
				return 0, fmt.Errorf("counter %s refused %q: %w", failed.Entity, failed.Name, err)
			}
			return 0, err
		}
		// A signal at a time: the entity runs it then.
		log := reprise.EntityID{Name: "log", Key: "visits"}
		if err := ctx.SignalEntity(log, "summarise", total, reprise.WithSignalTime(ctx.Now().Add(time.Hour))); err != nil {
			return 0, err
		}
		return total, nil
	})
}

// A transfer between two accounts as one step: while the critical section holds both
// accounts, no other operation runs on either. (It compiles; it runs once entities run end to
// end.)
func ExampleOrchestrationContext_LockEntities() {
	type transfer struct {
		From, To string
		Amount   int
	}
	_ = reprise.NewOrchestrator("transfer", func(ctx *reprise.OrchestrationContext, t transfer) (bool, error) {
		from := reprise.EntityID{Name: "account", Key: t.From}
		to := reprise.EntityID{Name: "account", Key: t.To}
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
}

package reprisetest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/reprise-dev/reprise"
	"github.com/reprise-dev/reprise/reprisetest"
)

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
	}
	return nil, fmt.Errorf("counter has no operation %q", ctx.Operation())
})

// An orchestration signals an entity now and a week later; the scheduled signal is a message
// the harness's clock reaches like a timer, through the entity dispatcher's wait.
var weekly = reprise.NewOrchestrator("weekly", func(ctx *reprise.OrchestrationContext, _ reprise.None) (int, error) {
	id := counter.ID("visits")
	if err := ctx.SignalEntity(id, "add", 1); err != nil {
		return 0, err
	}
	if err := ctx.SignalEntity(id, "add", 10, reprise.WithSignalTime(ctx.Now().Add(7*24*time.Hour))); err != nil {
		return 0, err
	}
	return reprise.CallEntity[int](ctx, id, "get", nil).Await()
})

func TestEntitiesAndScheduledSignals(t *testing.T) {
	t.Parallel()
	h := reprisetest.New(t, counter, weekly)
	r := h.Run(weekly, nil)
	if got := reprisetest.Output[int](r); got != 1 {
		t.Errorf("the orchestration read %d, want 1 (the scheduled signal is not due)", got)
	}
	ctx := context.Background()
	read := func() int {
		m, err := h.Client().GetEntity(ctx, counter.ID("visits"))
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := m.GetState(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	h.Advance(7*24*time.Hour - time.Second)
	if got := read(); got != 1 {
		t.Errorf("a second before the scheduled signal: %d, want 1", got)
	}
	h.Advance(time.Second)
	if got := read(); got != 11 {
		t.Errorf("at the scheduled signal: %d, want 11", got)
	}
}

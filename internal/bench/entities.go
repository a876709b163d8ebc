package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/reprise-dev/reprise"
)

// The entity scenarios: signals to one hot entity, signals spread over many, and critical
// sections over two entities. An entity has no completion to wait for, so the runs poll the
// entities' state until every operation is in it.

// benchCounter is the entity of the entity scenarios: "add" adds its input.
func (r *runner) benchCounter() *reprise.Entity[int] {
	wrong := r.cfg.wrongOutput
	return reprise.NewEntity("bench_counter", func(ctx *reprise.EntityContext[int]) (any, error) {
		switch ctx.Operation() {
		case "add":
			var n int
			if err := ctx.GetInput(&n); err != nil {
				return nil, err
			}
			if wrong {
				n++
			}
			ctx.SetState(ctx.State() + n)
			return ctx.State(), nil
		case "get":
			return ctx.State(), nil
		}
		return nil, fmt.Errorf("bench_counter has no operation %q", ctx.Operation())
	})
}

// entitySignals sends N signals to keys entities (in turn) from 64 goroutines, and waits until
// every entity holds its count.
func entitySignals(keys int) func(ctx context.Context, r *runner) error {
	return func(ctx context.Context, r *runner) error {
		c := r.app.Client()
		n := r.cfg.N
		key := func(i int) reprise.EntityID {
			return reprise.EntityID{Name: "bench_counter", Key: fmt.Sprint(i % keys)}
		}
		err := inParallel(n, func(i int) error { return c.SignalEntity(ctx, key(i), "add", 1) })
		if err != nil {
			return err
		}
		r.res.SignalsSentPerSecond = float64(n) / time.Since(r.start).Seconds()
		want := func(k int) int { // signals to key k
			w := n / keys
			if k < n%keys {
				w++
			}
			return w
		}
		done := 0
		for k := range min(keys, n) {
			if err := r.waitCount(ctx, key(k), want(k)); err != nil {
				return err
			}
			done += want(k)
			r.res.Completed = done
			r.progress(done)
		}
		r.res.Seconds = time.Since(r.start).Seconds()
		r.opsDone = n
		return nil
	}
}

// waitCount polls the entity until its count is want; a count above want is a wrong output.
func (r *runner) waitCount(ctx context.Context, id reprise.EntityID, want int) error {
	for {
		m, err := r.app.Client().GetEntity(ctx, id)
		if err == nil {
			var got int
			if err := m.GetState(&got); err != nil {
				return err
			}
			if got == want {
				return nil
			}
			if got > want {
				return fmt.Errorf("%w: entity %s counted %d, want %d", ErrWrongOutput, id, got, want)
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// benchAccount and benchTransfer are the critical-section scenario's: each transfer locks both
// accounts, reads the source's balance and moves one unit if it can.
func (r *runner) benchAccount() *reprise.Entity[int] {
	return reprise.NewEntity("bench_account", func(ctx *reprise.EntityContext[int]) (any, error) {
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
		return nil, fmt.Errorf("bench_account has no operation %q", ctx.Operation())
	})
}

type benchTransferInput struct{ From, To string }

func (r *runner) benchTransfer() *reprise.Orchestrator[benchTransferInput, bool] {
	wrong := r.cfg.wrongOutput
	return reprise.NewOrchestrator("bench_transfer", func(ctx *reprise.OrchestrationContext, in benchTransferInput) (bool, error) {
		from, to := reprise.EntityID{Name: "bench_account", Key: in.From}, reprise.EntityID{Name: "bench_account", Key: in.To}
		cs, err := ctx.LockEntities(from, to)
		if err != nil {
			return false, err
		}
		defer cs.Release()
		balance, err := reprise.CallEntity[int](ctx, from, "balance", nil).Await()
		if err != nil || balance < 1 {
			return false, err
		}
		if _, err := reprise.CallEntity[reprise.None](ctx, from, "deposit", -1).Await(); err != nil {
			return false, err
		}
		credit := 1
		if wrong {
			credit = 2
		}
		_, err = reprise.CallEntity[reprise.None](ctx, to, "deposit", credit).Await()
		return err == nil, err
	})
}

// entityCriticalSections runs N transfers between two accounts, all started at once, each a
// critical section over both; the total of the accounts must not change.
func entityCriticalSections(ctx context.Context, r *runner) error {
	c := r.app.Client()
	const funds = 1000
	for _, k := range []string{"a", "b"} {
		if err := c.SignalEntity(ctx, reprise.EntityID{Name: "bench_account", Key: k}, "deposit", funds); err != nil {
			return err
		}
	}
	ids, err := r.startMany(ctx, r.cfg.N, "bench_transfer", func(i int) any {
		if i%2 == 0 {
			return benchTransferInput{From: "a", To: "b"}
		}
		return benchTransferInput{From: "b", To: "a"}
	})
	if err != nil {
		return err
	}
	for i, id := range ids {
		inst, err := c.WaitForCompletion(ctx, id)
		if err != nil {
			return err
		}
		if inst.Status != reprise.StatusCompleted {
			return wrongOutput(id, inst, "true or false")
		}
		r.orchDone++
		r.res.Completed++
		r.latencies = append(r.latencies, createdToDone(i, inst))
		r.progress(i + 1)
	}
	r.res.Seconds = time.Since(r.start).Seconds()
	// The last transfer's unlocks are committed with its completion and run just after it.
	total := 0
	for _, k := range []string{"a", "b"} {
		for {
			m, err := c.GetEntity(ctx, reprise.EntityID{Name: "bench_account", Key: k})
			if err != nil {
				return err
			}
			if m.LockedBy == "" {
				var n int
				if err := m.GetState(&n); err != nil {
					return err
				}
				total += n
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("account %s still locked by %s after every transfer: %w", k, m.LockedBy, ctx.Err())
			case <-time.After(2 * time.Millisecond):
			}
		}
	}
	if total != 2*funds {
		return fmt.Errorf("%w: the accounts hold %d after the transfers, want %d", ErrWrongOutput, total, 2*funds)
	}
	r.opsDone = 3 * r.cfg.N // balance, withdraw, deposit
	return nil
}

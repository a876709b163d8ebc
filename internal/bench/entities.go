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

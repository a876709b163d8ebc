package bench

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/reprise-dev/reprise"
)

const greetings = `["Hello Tokyo!","Hello Seattle!","Hello London!"]`

// timerInput is the input of the timers scenario's orchestrator.
type timerInput struct {
	Delay time.Duration `json:"delay"`
	I     int           `json:"i"`
}

// definitions are the orchestrators and activities of every scenario. cfg.wrongOutput makes the
// activities answer wrongly, so that tests can see the checks fail.
func (r *runner) definitions() []reprise.Definition {
	wrong := r.cfg.wrongOutput
	sayHello := reprise.NewActivity("say_hello", func(ctx context.Context, city string) (string, error) {
		r.activities.Add(1)
		if wrong {
			return "Goodbye " + city + "!", nil
		}
		return "Hello " + city + "!", nil
	})
	inc := reprise.NewActivity("inc", func(ctx context.Context, n int) (int, error) {
		r.activities.Add(1)
		if wrong {
			return n + 2, nil
		}
		return n + 1, nil
	})
	return []reprise.Definition{
		sayHello, inc, r.benchCounter(), r.benchAccount(), r.benchTransfer(),
		reprise.NewOrchestrator("hello_sequence_orchestrator", func(ctx *reprise.OrchestrationContext, _ reprise.None) ([]string, error) {
			var out []string
			for _, city := range []string{"Tokyo", "Seattle", "London"} {
				g, err := sayHello.Call(ctx, city).Await()
				if err != nil {
					return nil, err
				}
				out = append(out, g)
			}
			return out, nil
		}),
		reprise.NewOrchestrator("fan_out", func(ctx *reprise.OrchestrationContext, n int) (int, error) {
			tasks := make([]*reprise.Task[int], n)
			for i := range tasks {
				tasks[i] = inc.Call(ctx, 0)
			}
			ones, err := reprise.All(ctx, tasks...).Await()
			sum := 0
			for _, v := range ones {
				sum += v
			}
			return sum, err
		}),
		reprise.NewOrchestrator("long_sequence", func(ctx *reprise.OrchestrationContext, n int) (int, error) {
			v := 0
			for range n {
				var err error
				if v, err = inc.Call(ctx, v).Await(); err != nil {
					return 0, err
				}
			}
			return v, nil
		}),
		reprise.NewOrchestrator("timer", func(ctx *reprise.OrchestrationContext, in timerInput) (int, error) {
			_, err := ctx.CreateTimer(in.Delay).Await()
			return in.I, err
		}),
		reprise.NewOrchestrator("idle", func(ctx *reprise.OrchestrationContext, _ reprise.None) (int, error) {
			return reprise.WaitForEvent[int](ctx, "release", 0).Await()
		}),
	}
}

func wrongOutput(id string, inst *reprise.Instance, want string) error {
	return fmt.Errorf("%w: instance %s ended %s with output %s, want Completed with %s", ErrWrongOutput, id, inst.Status, inst.Output, want)
}

// inParallel calls do(0) ... do(n-1) from 64 goroutines, as concurrent HTTP callers would, and
// stops handing out work at the first error, which it returns.
func inParallel(n int, do func(i int) error) error {
	next := make(chan int)
	errs := make(chan error, 64)
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for i := range next {
				if err := do(i); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	var err error
feed:
	for i := range n {
		select {
		case next <- i:
		case err = <-errs:
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err == nil && len(errs) > 0 {
		err = <-errs
	}
	return err
}

// startMany starts n instances of the orchestrator, in parallel, and returns their IDs.
func (r *runner) startMany(ctx context.Context, n int, name string, input func(i int) any) ([]string, error) {
	ids := make([]string, n)
	err := inParallel(n, func(i int) error {
		id, err := r.app.Client().StartNew(ctx, name, input(i))
		ids[i] = id
		return err
	})
	return ids, err
}

// waitAll waits for the instances in order, checks each with want(i) (the expected output) and
// counts them; latency(i, inst) gives the latency recorded for each, if set.
func (r *runner) waitAll(ctx context.Context, ids []string, want func(i int) string, acts int, latency func(i int, inst *reprise.Instance) time.Duration) error {
	for i, id := range ids {
		inst, err := r.app.Client().WaitForCompletion(ctx, id)
		if err != nil {
			return err
		}
		if w := want(i); inst.Status != reprise.StatusCompleted || string(inst.Output) != w {
			return wrongOutput(id, inst, w)
		}
		r.orchDone++
		r.actsDone += acts
		r.res.Completed++
		if latency != nil {
			r.latencies = append(r.latencies, latency(i, inst))
		}
		r.progress(i + 1)
	}
	return nil
}

func createdToDone(_ int, inst *reprise.Instance) time.Duration {
	return inst.LastUpdatedAt.Sub(inst.CreatedAt)
}

func helloSequence(ctx context.Context, r *runner) error {
	ids, err := r.startMany(ctx, r.cfg.N, "hello_sequence_orchestrator", func(int) any { return nil })
	if err != nil {
		return err
	}
	err = r.waitAll(ctx, ids, func(int) string { return greetings }, 3, createdToDone)
	r.res.Seconds = time.Since(r.start).Seconds()
	return err
}

// one runs a single orchestration of n activities whose output must be n.
func one(ctx context.Context, r *runner, name string) error {
	id, err := r.app.Client().StartNew(ctx, name, r.cfg.N)
	if err != nil {
		return err
	}
	inst, err := r.app.Client().WaitForCompletion(ctx, id)
	if err != nil {
		return err
	}
	r.res.Seconds = time.Since(r.start).Seconds()
	if want := strconv.Itoa(r.cfg.N); inst.Status != reprise.StatusCompleted || string(inst.Output) != want {
		return wrongOutput(id, inst, want)
	}
	r.orchDone, r.actsDone, r.res.Completed = 1, r.cfg.N, r.cfg.N
	r.latencies = append(r.latencies, inst.LastUpdatedAt.Sub(inst.CreatedAt))
	r.progress(r.cfg.N)
	return nil
}

func fanOut(ctx context.Context, r *runner) error       { return one(ctx, r, "fan_out") }
func longSequence(ctx context.Context, r *runner) error { return one(ctx, r, "long_sequence") }

func timers(ctx context.Context, r *runner) error {
	delay := r.cfg.TimerDelay
	ids, err := r.startMany(ctx, r.cfg.N, "timer", func(i int) any { return timerInput{Delay: delay, I: i} })
	if err != nil {
		return err
	}
	err = r.waitAll(ctx, ids, strconv.Itoa, 0, func(_ int, inst *reprise.Instance) time.Duration {
		return inst.LastUpdatedAt.Sub(inst.CreatedAt) - delay // how late the timer made it
	})
	r.res.Seconds = time.Since(r.start).Seconds()
	return err
}

// idle parks N instances on an external event and measures the memory they hold; then it raises
// the events and measures the release: the figures (time, throughput, latency) are the release's.
func idle(ctx context.Context, r *runner) error {
	runtime.GC()
	before := liveMemory()
	ids, err := r.startMany(ctx, r.cfg.N, "idle", func(int) any { return nil })
	if err != nil {
		return err
	}
	for _, id := range ids {
		if _, err := r.app.Client().WaitForStart(ctx, id); err != nil {
			return err
		}
	}
	runtime.GC()
	if after := liveMemory(); after > before {
		r.res.MemoryPerInstanceBytes = float64(after-before) / float64(len(ids))
	}

	release := time.Now()
	r.tx.reset() // the release is what is measured
	raised := make([]time.Time, len(ids))
	err = inParallel(len(ids), func(i int) error {
		raised[i] = time.Now()
		return r.app.Client().RaiseEvent(ctx, ids[i], "release", i)
	})
	if err != nil {
		return err
	}
	r.start = release
	err = r.waitAll(ctx, ids, strconv.Itoa, 0, func(i int, inst *reprise.Instance) time.Duration {
		return inst.LastUpdatedAt.Sub(raised[i])
	})
	r.res.Seconds = time.Since(release).Seconds()
	return err
}

func latency(ctx context.Context, r *runner) error {
	for i := range r.cfg.N {
		start := time.Now()
		id, err := r.app.Client().StartNew(ctx, "hello_sequence_orchestrator", nil)
		if err != nil {
			return err
		}
		inst, err := r.app.Client().WaitForCompletion(ctx, id)
		if err != nil {
			return err
		}
		r.latencies = append(r.latencies, time.Since(start))
		if inst.Status != reprise.StatusCompleted || string(inst.Output) != greetings {
			return wrongOutput(id, inst, greetings)
		}
		r.orchDone++
		r.actsDone += 3
		r.res.Completed++
		r.progress(i + 1)
	}
	r.res.Seconds = time.Since(r.start).Seconds()
	return nil
}

package reprise_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/reprise-dev/reprise"
)

// runExample starts an App with the definitions on a temporary SQLite file and returns it with a
// function that stops it.
func runExample(defs ...reprise.Definition) (*reprise.App, func()) {
	dir, err := os.MkdirTemp("", "reprise-example")
	if err != nil {
		log.Fatal(err)
	}
	app := reprise.NewApp(
		reprise.WithSQLiteFile(filepath.Join(dir, "example.db")),
		reprise.WithLogger(slog.New(slog.DiscardHandler)),
	)
	app.Register(defs...)
	if err := app.Start(context.Background()); err != nil {
		log.Fatal(err)
	}
	return app, func() {
		app.Shutdown(context.Background())
		os.RemoveAll(dir)
	}
}

func Example() {
	sayHello := reprise.NewActivity("say_hello", func(ctx context.Context, city string) (string, error) {
		return "Hello " + city + "!", nil
	})
	helloSequence := reprise.NewOrchestrator("hello_sequence_orchestrator",
		func(ctx *reprise.OrchestrationContext, _ reprise.None) ([]string, error) {
			var out []string
			for _, city := range []string{"Tokyo", "Seattle", "London"} {
				greeting, err := sayHello.Call(ctx, city).Await()
				if err != nil {
					return nil, err
				}
				out = append(out, greeting)
			}
			return out, nil
		})

	app, stop := runExample(sayHello, helloSequence)
	defer stop()
	ctx := context.Background()
	id, err := helloSequence.Start(ctx, app.Client(), reprise.None{})
	if err != nil {
		log.Fatal(err)
	}
	inst, err := app.Client().WaitForCompletion(ctx, id)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(inst.Status, string(inst.Output))
	// Output: Completed ["Hello Tokyo!","Hello Seattle!","Hello London!"]
}

func ExampleAll() {
	square := reprise.NewActivity("square", func(ctx context.Context, n int) (int, error) { return n * n, nil })
	sumOfSquares := reprise.NewOrchestrator("sum_of_squares", func(ctx *reprise.OrchestrationContext, n int) (int, error) {
		var tasks []*reprise.Task[int]
		for i := 1; i <= n; i++ {
			tasks = append(tasks, square.Call(ctx, i)) // fan out: all run in parallel
		}
		squares, err := reprise.All(ctx, tasks...).Await() // fan in
		if err != nil {
			return 0, err
		}
		sum := 0
		for _, s := range squares {
			sum += s
		}
		return sum, nil
	})

	app, stop := runExample(square, sumOfSquares)
	defer stop()
	ctx := context.Background()
	id, _ := sumOfSquares.Start(ctx, app.Client(), 10)
	inst, _ := app.Client().WaitForCompletion(ctx, id)
	fmt.Println(string(inst.Output))
	// Output: 385
}

func ExampleWaitForEvent() {
	approval := reprise.NewOrchestrator("approval", func(ctx *reprise.OrchestrationContext, _ reprise.None) (string, error) {
		ctx.SetCustomStatus("waiting for approval")
		approver, err := reprise.WaitForEvent[string](ctx, "Approved", 24*time.Hour).Await()
		if errors.Is(err, reprise.ErrTimeout) {
			return "escalated", nil
		}
		if err != nil {
			return "", err
		}
		return "approved by " + approver, nil
	})

	app, stop := runExample(approval)
	defer stop()
	ctx := context.Background()
	c := app.Client()
	id, _ := approval.Start(ctx, c, reprise.None{}, reprise.WithInstanceID("order-42"))
	if err := c.RaiseEvent(ctx, id, "Approved", "alice"); err != nil {
		log.Fatal(err)
	}
	inst, _ := c.WaitForCompletion(ctx, id)
	fmt.Println(string(inst.Output))
	// Output: "approved by alice"
}

func ExampleRetryPolicy() {
	attempts := 0
	flaky := reprise.NewActivity("flaky", func(ctx context.Context, _ reprise.None) (string, error) {
		attempts++ // activities run one at a time here; real ones should be idempotent instead
		info, _ := reprise.ActivityInfoFrom(ctx)
		if info.Attempt < 3 {
			return "", errors.New("service unavailable")
		}
		return fmt.Sprintf("succeeded on attempt %d", info.Attempt), nil
	})
	orch := reprise.NewOrchestrator("with_retries", func(ctx *reprise.OrchestrationContext, _ reprise.None) (string, error) {
		return flaky.Call(ctx, reprise.None{}, reprise.WithRetry(reprise.RetryPolicy{
			FirstInterval:      10 * time.Millisecond,
			BackoffCoefficient: 2,
			MaxAttempts:        5,
		})).Await()
	})

	app, stop := runExample(flaky, orch)
	defer stop()
	ctx := context.Background()
	id, _ := orch.Start(ctx, app.Client(), reprise.None{})
	inst, _ := app.Client().WaitForCompletion(ctx, id)
	fmt.Println(string(inst.Output), attempts)
	// Output: "succeeded on attempt 3" 3
}

func ExampleOrchestrationContext_ContinueAsNew() {
	// An eternal counter: each generation handles one event and starts over, so the history
	// never grows.
	counter := reprise.NewOrchestrator("counter", func(ctx *reprise.OrchestrationContext, total int) (int, error) {
		n, err := reprise.WaitForEvent[int](ctx, "add", 0).Await()
		if err != nil {
			return 0, err
		}
		if n == 0 {
			return total, nil // done
		}
		return 0, ctx.ContinueAsNew(total+n, true) // keep events that already arrived
	})

	app, stop := runExample(counter)
	defer stop()
	ctx := context.Background()
	c := app.Client()
	id, _ := counter.Start(ctx, c, 0)
	for _, n := range []int{5, 10, 20, 0} {
		c.RaiseEvent(ctx, id, "add", n)
	}
	inst, _ := c.WaitForCompletion(ctx, id)
	fmt.Println(string(inst.Output))
	// Output: 35
}

func ExampleClient_Terminate() {
	forever := reprise.NewOrchestrator("forever", func(ctx *reprise.OrchestrationContext, _ reprise.None) (reprise.None, error) {
		_, err := ctx.CreateTimer(365 * 24 * time.Hour).Await()
		return reprise.None{}, err
	})

	app, stop := runExample(forever)
	defer stop()
	ctx := context.Background()
	c := app.Client()
	id, _ := forever.Start(ctx, c, reprise.None{})
	if _, err := c.WaitForStart(ctx, id); err != nil {
		log.Fatal(err)
	}
	if err := c.Terminate(ctx, id, "no longer needed"); err != nil {
		log.Fatal(err)
	}
	inst, _ := c.WaitForCompletion(ctx, id)
	fmt.Println(inst.Status, string(inst.Output))
	// Output: Terminated "no longer needed"
}

package reprise_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/reprise-dev/reprise"
)

// An App on a clock that the code moves (manualClock, in clock_test.go): an hour's timer fires
// when the clock is moved an hour. Package reprisetest builds its test harness on this, with a
// clock that moves by itself once nothing else can happen.
func ExampleWithClock() {
	clock := &manualClock{now: time.Date(2040, time.January, 1, 0, 0, 0, 0, time.UTC), waiters: map[chan struct{}]time.Time{}}
	nap := reprise.NewOrchestrator("nap", func(ctx *reprise.OrchestrationContext, _ reprise.None) (time.Time, error) {
		_, err := ctx.CreateTimer(time.Hour).Await()
		return ctx.Now(), err
	})
	dir, err := os.MkdirTemp("", "reprise-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	app := reprise.NewApp(reprise.WithSQLiteFile(filepath.Join(dir, "example.db")),
		reprise.WithLogger(slog.New(slog.DiscardHandler)), reprise.WithClock(clock))
	app.Register(nap)
	ctx := context.Background()
	if err := app.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer app.Shutdown(ctx)

	id, err := nap.Start(ctx, app.Client(), reprise.None{})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := app.Client().WaitForStart(ctx, id); err != nil { // the timer is scheduled
		log.Fatal(err)
	}
	clock.advance(time.Hour)
	inst, err := app.Client().WaitForCompletion(ctx, id)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(inst.Status, string(inst.Output))
	// Output: Completed "2040-01-01T01:00:00Z"
}

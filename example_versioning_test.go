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

// ExampleWithVersioning shows a build of an app that stamps version 2.0 on the instances it
// starts and, under the default CurrentOrOlder strategy, runs those of 2.0 and older: a 3.0
// instance (started by a newer build sharing the task hub) is left for a host that runs it.
// Orchestrators read their instance's version with ctx.Version, and sub-orchestrations inherit it.
func ExampleWithVersioning() {
	child := reprise.NewOrchestrator("child", func(ctx *reprise.OrchestrationContext, _ reprise.None) (string, error) {
		return "child " + ctx.Version(), nil
	})
	order := reprise.NewOrchestrator("order", func(ctx *reprise.OrchestrationContext, _ reprise.None) (string, error) {
		c, err := child.Call(ctx, reprise.None{}).Await()
		if ctx.Version() == "1.0" {
			return "old path, " + c, err // instances started before 2.0 keep their behaviour
		}
		return "new path, " + c, err
	})

	dir, err := os.MkdirTemp("", "reprise-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	app := reprise.NewApp(reprise.WithSQLiteFile(filepath.Join(dir, "example.db")),
		reprise.WithLogger(slog.New(slog.DiscardHandler)),
		reprise.WithVersioning(reprise.Versioning{DefaultVersion: "2.0"}))
	app.Register(order, child)
	ctx := context.Background()
	if err := app.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer app.Shutdown(ctx)

	for _, opts := range [][]reprise.StartOption{nil, {reprise.WithVersion("1.0")}} {
		id, err := order.Start(ctx, app.Client(), reprise.None{}, opts...)
		if err != nil {
			log.Fatal(err)
		}
		inst, err := app.Client().WaitForCompletion(ctx, id)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(inst.Version, string(inst.Output))
	}

	newer, err := order.Start(ctx, app.Client(), reprise.None{}, reprise.WithVersion("3.0"))
	if err != nil {
		log.Fatal(err)
	}
	wait, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := app.Client().WaitForCompletion(wait, newer); err != nil {
		inst, _ := app.Client().GetInstance(ctx, newer)
		fmt.Println(inst.Version, inst.Status, "(left for a host of 3.0 or later)")
	}
	// Output:
	// 2.0 "new path, child 2.0"
	// 1.0 "old path, child 1.0"
	// 3.0 Pending (left for a host of 3.0 or later)
}

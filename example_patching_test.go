package reprise_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/reprise-dev/reprise"
)

var (
	auditEntry = reprise.NewActivity("record_audit", func(_ context.Context, order string) (string, error) {
		return "audited " + order, nil
	})
	// expenseBeforePatch is the code before the deploy: it waits for the approval.
	expenseBeforePatch = reprise.NewOrchestrator("expense", func(ctx *reprise.OrchestrationContext, order string) ([]string, error) {
		by, err := reprise.WaitForEvent[string](ctx, "Approve", 0).Await()
		return []string{"approved by " + by}, err
	})
	// expensePatched records an audit entry first. Instances that were already waiting when it was
	// deployed have passed that point: IsPatched tells them apart.
	expensePatched = reprise.NewOrchestrator("expense", func(ctx *reprise.OrchestrationContext, order string) ([]string, error) {
		var out []string
		if ctx.IsPatched("audit-before-approval") {
			entry, err := auditEntry.Call(ctx, order).Await()
			if err != nil {
				return nil, err
			}
			out = append(out, entry)
		}
		by, err := reprise.WaitForEvent[string](ctx, "Approve", 0).Await()
		return append(out, "approved by "+by), err
	})
)

// runBuild starts an App with the definitions on the SQLite file, as a new build of the app.
func runBuild(file string, defs ...reprise.Definition) *reprise.App {
	app := reprise.NewApp(reprise.WithSQLiteFile(file), reprise.WithLogger(slog.New(slog.DiscardHandler)))
	app.Register(defs...)
	if err := app.Start(context.Background()); err != nil {
		log.Fatal(err)
	}
	return app
}

func ExampleOrchestrationContext_IsPatched() {
	dir, err := os.MkdirTemp("", "reprise-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "example.db")
	ctx := context.Background()

	// The first build starts an instance, which waits for its approval.
	v1 := runBuild(file, expenseBeforePatch)
	if _, err := expenseBeforePatch.Start(ctx, v1.Client(), "taxi", reprise.WithInstanceID("before-deploy")); err != nil {
		log.Fatal(err)
	}
	if _, err := v1.Client().WaitForStart(ctx, "before-deploy"); err != nil {
		log.Fatal(err)
	}
	v1.Shutdown(ctx)

	// The second build runs it on, and starts another.
	v2 := runBuild(file, expensePatched, auditEntry)
	defer v2.Shutdown(ctx)
	c := v2.Client()
	if _, err := expensePatched.Start(ctx, c, "hotel", reprise.WithInstanceID("after-deploy")); err != nil {
		log.Fatal(err)
	}
	for _, id := range []string{"before-deploy", "after-deploy"} {
		if err := c.RaiseEvent(ctx, id, "Approve", "alice"); err != nil {
			log.Fatal(err)
		}
		inst, err := c.WaitForCompletion(ctx, id)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(id, inst.Status, string(inst.Output))
	}
	// Output:
	// before-deploy Completed ["approved by alice"]
	// after-deploy Completed ["audited hotel","approved by alice"]
}

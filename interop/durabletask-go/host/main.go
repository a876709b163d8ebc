// Command host is the Go host of the durabletask-go client test (TestClient), which runs no SDK
// worker: this process runs, on the server's SQLite store, the one orchestrator the test needs:
// "Approval" waits for the external event "approval" and returns its data.
//
//	host --store FILE
//
// It prints "ready" once it runs and stops when its stdin closes (the test ends).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/reprise-dev/reprise"
)

func main() {
	store := flag.String("store", "", "SQLite file of the reprise serve to host for")
	flag.Parse()
	if *store == "" {
		fmt.Fprintln(os.Stderr, "host: --store FILE is required (the store of the reprise serve under test)")
		os.Exit(2)
	}
	app := reprise.NewApp(reprise.WithSQLiteFile(*store), reprise.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, nil))))
	app.Register(reprise.NewOrchestrator("Approval", func(ctx *reprise.OrchestrationContext, _ any) (any, error) {
		return reprise.WaitForEvent[any](ctx, "approval", 0).Await()
	}))
	if err := app.Start(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "host:", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	if err := app.Shutdown(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "host: shutdown:", err)
		os.Exit(1)
	}
}

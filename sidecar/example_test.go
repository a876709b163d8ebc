package sidecar_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/reprise-dev/reprise"
	"github.com/reprise-dev/reprise/sidecar"
)

// An App serves the Durable Task gRPC protocol beside its Go functions: the SDKs' workers run
// the orchestrators and activities the App has not registered, and their clients start and
// manage every instance of the hub.
func ExampleListen() {
	dir, _ := os.MkdirTemp("", "sidecar-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()

	app := reprise.NewApp(reprise.WithSQLiteFile(filepath.Join(dir, "reprise.db")), reprise.WithLogger(slog.New(slog.DiscardHandler)))
	app.Register(reprise.NewOrchestrator("Greet", func(ctx *reprise.OrchestrationContext, name string) (string, error) {
		// "Format" is an activity of a JavaScript or Python worker connected to the sidecar.
		return reprise.CallActivity[string](ctx, "Format", name).Await()
	}))
	if err := app.Start(ctx); err != nil {
		panic(err)
	}
	defer app.Shutdown(ctx)

	// Addr "" listens on REPRISE_GRPC_ADDR, else 127.0.0.1:4001; here any free loopback port.
	srv, err := sidecar.Listen(ctx, app, sidecar.Options{Addr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	defer srv.Shutdown(ctx)
	fmt.Println("access:", srv.Access())
	// Output: access: no key (loopback only: every caller is on this machine); plain text
}

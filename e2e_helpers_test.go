package reprise_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/reprise-dev/reprise"
)

// startApp runs an App on a fresh SQLite file with the definitions, and shuts it down at the end
// of the test.
func startApp(t *testing.T, defs []reprise.Definition, opts ...reprise.Option) *reprise.App {
	t.Helper()
	opts = append([]reprise.Option{
		reprise.WithSQLiteFile(filepath.Join(t.TempDir(), "test.db")),
		reprise.WithLogger(slog.New(slog.DiscardHandler)),
	}, opts...)
	app := reprise.NewApp(opts...)
	app.Register(defs...)
	if err := app.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := app.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return app
}

// waitDone waits for an instance to finish, failing the test after a generous deadline.
func waitDone(t *testing.T, c *reprise.Client, id string) *reprise.Instance {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	inst, err := c.WaitForCompletion(ctx, id)
	if err != nil {
		t.Fatalf("waiting for %s: %v", id, err)
	}
	return inst
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

package reprise_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
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

// installNodeDeps runs npm ci in dir when node_modules lacks pkg, so that go test works on a fresh
// checkout (the interop test's interop/js, the browser test's interop/browser).
func installNodeDeps(t *testing.T, npm, dir, pkg string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, "node_modules", pkg, "package.json")); err == nil {
		return
	} else if !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("npm ci in %s failed: %v\n%s\nRun (cd %s && npm ci) by hand and fix what it reports (network access to the registry, npm version).",
			dir, err, out, dir)
	}
}

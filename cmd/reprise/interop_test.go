package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/reprise-dev/reprise"
)

// durabletaskJSSteps is the number of steps interop/durabletask-js/client.mjs runs; a script that
// skipped steps, or gained some without this being updated, fails the test.
const durabletaskJSSteps = 11

// durabletaskJSPackages are the JavaScript Durable Task SDKs whose clients client.mjs drives, each
// pinned to an exact version in interop/durabletask-js/package.json.
var durabletaskJSPackages = []string{"@microsoft/durabletask-js", "@dapr/durabletask-js"}

// TestInteropDurableTaskJS runs the clients of the JavaScript Durable Task SDKs
// (@microsoft/durabletask-js and its Dapr fork @dapr/durabletask-js) against `reprise serve`:
// schedule, get, wait, raise, terminate and purge over gRPC, one subtest per package, each on a
// server and store of its own. A Go host on the same store runs the one orchestrator the script
// needs: an SDK worker without work-item filters (the Dapr SDK has none) would also take the
// instances the script wants left PENDING. The SDKs' workers are TestInteropDurableTaskJSWorkers'.
// The steps and their assertions are in the script.
func TestInteropDurableTaskJS(t *testing.T) {
	node, dir := durabletaskJS(t)
	for _, pkg := range durabletaskJSPackages {
		t.Run(pkg, func(t *testing.T) {
			runDurableTaskJS(t, node, dir, pkg)
		})
	}
}

// durabletaskJS returns node and the absolute path of interop/durabletask-js, with the packages
// installed there (npm ci when one is missing), or skips the test without node or npm.
func durabletaskJS(t *testing.T) (node, dir string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("skipping the durabletask-js interop test: node is not on PATH; install Node.js 20+ and npm to run it")
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Skip("skipping the durabletask-js interop test: npm is not on PATH; install Node.js 20+ and npm to run it")
	}
	dir, err = filepath.Abs(filepath.Join("..", "..", "interop", "durabletask-js"))
	if err != nil {
		t.Fatal(err)
	}
	// npm ci once when any package is missing (a lockfile that gained one, on an old checkout).
	for _, pkg := range durabletaskJSPackages {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", filepath.FromSlash(pkg), "package.json")); errors.Is(err, os.ErrNotExist) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("npm ci in %s failed: %v\n%s\nRun (cd %s && npm ci) by hand and fix what it reports.", dir, err, out, dir)
			}
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	return node, dir
}

// runDurableTaskJS runs client.mjs with the client of pkg against a `reprise serve` of its own.
func runDurableTaskJS(t *testing.T, node, dir, pkg string) {
	dbPath := filepath.Join(t.TempDir(), "serve.db")
	srv := startServe(t, "--store", dbPath)
	worker := reprise.NewApp(reprise.WithSQLiteFile(dbPath), reprise.WithLogger(slog.New(slog.DiscardHandler)))
	worker.Register(reprise.NewOrchestrator("Approval", func(ctx *reprise.OrchestrationContext, _ any) (any, error) {
		return reprise.WaitForEvent[any](ctx, "approval", 0).Await()
	}))
	if err := worker.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer worker.Shutdown(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "client.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GRPC_ADDR="+srv.grpcAddr, "DURABLETASK_PACKAGE="+pkg)
	out, err := cmd.CombinedOutput()
	t.Logf("client.mjs with %s:\n%s", pkg, out)
	if err != nil {
		t.Fatalf("client.mjs with %s failed: %v (server log:\n%s)", pkg, err, srv.stderr)
	}
	m := regexp.MustCompile(`(?m)^OK (\d+) steps \((.+)\)$`).FindSubmatch(out)
	if m == nil {
		t.Fatal("client.mjs printed no summary line")
	}
	if got := string(m[2]); got != pkg {
		t.Errorf("client.mjs ran with %s, want %s", got, pkg)
	}
	if got, _ := strconv.Atoi(string(m[1])); got != durabletaskJSSteps {
		t.Errorf("client.mjs ran %d steps, want %d", got, durabletaskJSSteps)
	}
}

package reprise_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reprise-dev/reprise"
)

// interopSteps is the number of steps interop/js/client.mjs runs in each mode. A script that
// skipped steps, or gained some without this being updated, fails the test.
const interopSteps = 42

const (
	interopHub = "InteropHub"
	interopKey = "interop-key"
)

var (
	interopSummary  = regexp.MustCompile(`(?m)^OK (\d+) steps$`)
	interopStepLine = regexp.MustCompile(`(?m)^ok \d+ - `)
)

// TestInteropDurableFunctionsJS runs the official durable-functions npm client (pinned in
// interop/js/package.json) against a served App, once through the loopback RPC base
// (/durabletask/, as the client does when its binding has rpcBaseUrl) and once through the
// webhook URLs with the system key (legacy mode), and once more in legacy mode on an anonymous host
// (no key; the binding's requiredQueryStringParameters carry the task hub, without which the
// client refuses entity calls). The scenarios and their assertions are in interop/js/client.mjs.
func TestInteropDurableFunctionsJS(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("skipping the durable-functions (npm) interop test: node is not on PATH; install Node.js 20+ and npm to run it")
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Skip("skipping the durable-functions (npm) interop test: npm is not on PATH; install Node.js 20+ and npm to run it")
	}
	dir, err := filepath.Abs(filepath.Join("interop", "js"))
	if err != nil {
		t.Fatal(err)
	}
	installNodeDeps(t, npm, dir, "durable-functions")

	for _, run := range []struct {
		name, mode string
		anonymous  bool
	}{{"rpc", "rpc", false}, {"webhook", "webhook", false}, {"webhook-anonymous", "webhook", true}} {
		t.Run(run.name, func(t *testing.T) {
			mode := run.mode
			origin, counts := serveInteropApp(t, run.anonymous)
			key := interopKey
			if run.anonymous {
				key = ""
			}
			runInteropScript(t, node, dir, mode, origin, key)
			// The mode must really have chosen the path: with rpcBaseUrl the client sends its
			// calls to /durabletask/ (the script's own fetches use the webhook URLs it was
			// handed); without it, nothing goes there.
			rpc, webhook := counts.rpc.Load(), counts.webhook.Load()
			t.Logf("requests: %d to %s/, %d to %s/", rpc, interopRPCBase, webhook, interopWebhookBase)
			if mode == "rpc" && rpc < webhook {
				t.Errorf("MODE=rpc: only %d requests to %s/ and %d to %s/; the client did not use rpcBaseUrl", rpc, interopRPCBase, webhook, interopWebhookBase)
			}
			if mode == "webhook" && (rpc != 0 || webhook == 0) {
				t.Errorf("MODE=webhook: %d requests to %s/ and %d to %s/; want none and some", rpc, interopRPCBase, webhook, interopWebhookBase)
			}
		})
	}
}

const (
	interopRPCBase     = "/durabletask"
	interopWebhookBase = "/runtime/webhooks/durabletask"
)

// interopCounts counts the requests the server received under each base path.
type interopCounts struct{ rpc, webhook atomic.Int64 }

// serveInteropApp starts an App with the orchestrators and the entity client.mjs uses (the entity
// is the feature tests' counter) and serves its Handler on a loopback address, returning the
// origin and the request counts. An anonymous App serves the management API without a key.
func serveInteropApp(t *testing.T, anonymous bool) (string, *interopCounts) {
	t.Helper()
	sayHello := reprise.NewActivity("say_hello", func(ctx context.Context, name string) (string, error) {
		return "Hello " + name + "!", nil
	})
	type helloInput struct {
		Name string `json:"name"`
	}
	hello := reprise.NewOrchestrator("hello", func(ctx *reprise.OrchestrationContext, in helloInput) (string, error) {
		return sayHello.Call(ctx, in.Name).Await()
	})
	echo := reprise.NewOrchestrator("echo", func(ctx *reprise.OrchestrationContext, in json.RawMessage) (json.RawMessage, error) {
		return in, nil
	})
	waitApproval := reprise.NewOrchestrator("wait_approval", func(ctx *reprise.OrchestrationContext, _ json.RawMessage) (json.RawMessage, error) {
		return reprise.WaitForEvent[json.RawMessage](ctx, "approval", 0).Await()
	})

	opts := []reprise.Option{
		reprise.WithSQLiteFile(filepath.Join(t.TempDir(), "interop.db")),
		reprise.WithLogger(slog.New(slog.DiscardHandler)),
		reprise.WithHub(interopHub),
	}
	if anonymous {
		opts = append(opts, reprise.WithAnonymousManagement())
	} else {
		opts = append(opts, reprise.WithKeys(reprise.Keys{System: interopKey}))
	}
	app := reprise.NewApp(opts...)
	app.Register(sayHello, hello, echo, waitApproval, counter, helloFromEntity)
	if err := app.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	// httptest listens on 127.0.0.1, which the /durabletask/ RPC base requires.
	counts := new(interopCounts)
	h := app.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, interopRPCBase+"/"):
			counts.rpc.Add(1)
		case strings.HasPrefix(r.URL.Path, interopWebhookBase+"/"):
			counts.webhook.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := app.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return srv.URL, counts
}

func runInteropScript(t *testing.T, node, dir, mode, origin, key string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "client.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"ORIGIN="+origin,
		"HUB="+interopHub,
		"SYSTEM_KEY="+key,
		"MODE="+mode,
		"KEEP_GOING=",
	)
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("node client.mjs (MODE=%s) did not finish in time:\n%s", mode, out)
	}
	if err != nil {
		t.Fatalf("node client.mjs (MODE=%s) failed: %v\n%s", mode, err, out)
	}
	if testing.Verbose() {
		t.Logf("node client.mjs (MODE=%s):\n%s", mode, strings.TrimRight(string(out), "\n"))
	}
	m := interopSummary.FindAllSubmatch(out, -1)
	if len(m) != 1 {
		t.Fatalf("node client.mjs (MODE=%s) exited 0 without one summary line \"OK <n> steps\":\n%s", mode, out)
	}
	n, _ := strconv.Atoi(string(m[0][1]))
	if n != interopSteps {
		t.Fatalf("node client.mjs (MODE=%s) passed %d steps, want %d (update interopSteps when steps are added or removed):\n%s",
			mode, n, interopSteps, out)
	}
	if got := len(interopStepLine.FindAll(out, -1)); got != n {
		t.Fatalf("node client.mjs (MODE=%s) printed %d step lines but summarised %d:\n%s", mode, got, n, out)
	}
}

package reprise_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reprise-dev/reprise"
	"github.com/reprise-dev/reprise/internal/pgtest"
)

// sharedStores runs test once on an SQLite file and once on a PostgreSQL database, each shared
// by the Apps the test starts with the option it is given.
func sharedStores(t *testing.T, test func(t *testing.T, shared reprise.Option)) {
	t.Run("sqlite", func(t *testing.T) {
		test(t, reprise.WithSQLiteFile(filepath.Join(t.TempDir(), "shared.db")))
	})
	t.Run("postgres", func(t *testing.T) {
		test(t, reprise.WithPostgres(pgtest.DSN(t)))
	})
}

// startNamedApp runs an App on the shared store with the definitions, logging JSON to logs.
func startNamedApp(t *testing.T, shared reprise.Option, logs *logBuffer, defs ...reprise.Definition) *reprise.App {
	t.Helper()
	app := reprise.NewApp(shared, reprise.WithPollInterval(20*time.Millisecond),
		reprise.WithLogger(slog.New(slog.NewJSONHandler(logs, nil))), reprise.WithKeys(reprise.Keys{Master: "m"}))
	app.Register(defs...)
	if err := app.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdownApp(t, app) })
	return app
}

func shutdownApp(t *testing.T, app *reprise.App) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := app.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

// Two apps with different registrations on one store and hub (as the examples, run from the
// repository root, share reprise.db): each runs its own work and fails none of the other's.
func TestTwoAppsOnOneStore(t *testing.T) { sharedStores(t, testTwoAppsOnOneStore) }

func testTwoAppsOnOneStore(t *testing.T, db reprise.Option) {
	var ranA, ranB atomic.Int32
	stepA := reprise.NewActivity("step_a", func(ctx context.Context, n int) (int, error) { ranA.Add(1); return n + 1, nil })
	stepB := reprise.NewActivity("step_b", func(ctx context.Context, n int) (int, error) { ranB.Add(1); return n * 10, nil })
	flowA := reprise.NewOrchestrator("flow_a", func(ctx *reprise.OrchestrationContext, n int) (int, error) {
		return stepA.Call(ctx, n).Await()
	})
	flowB := reprise.NewOrchestrator("flow_b", func(ctx *reprise.OrchestrationContext, n int) (int, error) {
		return stepB.Call(ctx, n).Await()
	})
	a := startNamedApp(t, db, &logBuffer{}, flowA, stepA)
	b := startNamedApp(t, db, &logBuffer{}, flowB, stepB)
	ctx := testCtx(t)
	const n = 20
	var idsA, idsB []string
	for i := range n {
		id, err := flowA.Start(ctx, a.Client(), i)
		if err != nil {
			t.Fatal(err)
		}
		idsA = append(idsA, id)
		if id, err = flowB.Start(ctx, b.Client(), i); err != nil {
			t.Fatal(err)
		}
		idsB = append(idsB, id)
	}
	for i := range n {
		// Either client reads any instance: the store is shared.
		if got := output[int](t, waitDone(t, b.Client(), idsA[i])); got != i+1 {
			t.Errorf("flow_a(%d) = %d", i, got)
		}
		if got := output[int](t, waitDone(t, a.Client(), idsB[i])); got != i*10 {
			t.Errorf("flow_b(%d) = %d", i, got)
		}
	}
	if ranA.Load() != n || ranB.Load() != n {
		t.Errorf("activities ran %d and %d times, want %d each", ranA.Load(), ranB.Load(), n)
	}
}

// Work whose orchestrator or activity no running host registers waits (it is not failed), the
// host warns once per name and shows the count in the dashboard, and the work completes once a
// host that has the names starts.
func TestWorkWaitsForAHostThatRegistersIt(t *testing.T) { sharedStores(t, testWorkWaits) }

func testWorkWaits(t *testing.T, db reprise.Option) {
	approval := reprise.NewOrchestrator("approval", func(ctx *reprise.OrchestrationContext, _ reprise.None) (string, error) {
		return reprise.WaitForEvent[string](ctx, "go", 0).Await()
	})
	charge := reprise.NewActivity("Charge", func(ctx context.Context, n int) (int, error) { return n * 2, nil })
	ship := reprise.NewOrchestrator("ship", func(ctx *reprise.OrchestrationContext, n int) (int, error) { return n + 1, nil })
	order := reprise.NewOrchestrator("order", func(ctx *reprise.OrchestrationContext, n int) (int, error) {
		charged := reprise.CallActivity[int](ctx, "charge", n) // another casing than registered
		shipped := reprise.CallSubOrchestrator[int](ctx, "ship", n)
		c, err := charged.Await()
		if err != nil {
			return 0, err
		}
		s, err := shipped.Await()
		return c + s, err
	})
	ctx := testCtx(t)

	// An approval left running by an app that has since stopped.
	first := startNamedApp(t, db, &logBuffer{}, approval)
	approvalID, err := approval.Start(ctx, first.Client(), reprise.None{})
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(t, first.Client(), approvalID, reprise.StatusRunning)
	shutdownApp(t, first)

	// Another app, which has none of approval, Charge and ship.
	logs := &logBuffer{}
	host := startNamedApp(t, db, logs, order)
	c := host.Client()
	if err := c.RaiseEvent(ctx, approvalID, "go", "approved"); err != nil {
		t.Fatal(err)
	}
	orderID, err := order.Start(ctx, c, 5)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"orchestration approval": 1, "orchestration ship": 1, "activity charge": 1}
	waitUnclaimed(t, host, want)
	for _, w := range warnings(t, logs) {
		if strings.Contains(w, "approval") || strings.Contains(w, "ship") || strings.Contains(w, "charge") {
			continue
		}
		t.Errorf("unexpected warning: %s", w)
	}
	for id, status := range map[string]reprise.RuntimeStatus{approvalID: reprise.StatusRunning, orderID: reprise.StatusRunning} {
		inst, err := c.GetInstance(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if inst.Status != status {
			t.Fatalf("instance %s (%s) is %s while it waits for a host, want %s; failure %+v", id, inst.Name, inst.Status, status, inst.Failure)
		}
	}

	// A host that registers them starts: everything completes.
	startNamedApp(t, db, &logBuffer{}, approval, charge, ship)
	if got := output[string](t, waitDone(t, c, approvalID)); got != "approved" {
		t.Errorf("approval = %q", got)
	}
	if got := output[int](t, waitDone(t, c, orderID)); got != 5*2+5+1 {
		t.Errorf("order = %d", got)
	}
	waitUnclaimed(t, host, map[string]int{})

	// Once per name, though the host looked many times while the work waited.
	seen := map[string]int{}
	for _, rec := range logs.records(t) {
		if rec["level"] == "WARN" && strings.HasPrefix(rec["msg"].(string), "work waits for") {
			seen[fmt.Sprintf("%v %v", rec["kind"], strings.ToLower(rec["name"].(string)))]++
			if rec["count"] != 1.0 {
				t.Errorf("warning with count %v, want 1: %v", rec["count"], rec)
			}
		}
	}
	if len(seen) != len(want) {
		t.Errorf("warnings for %v, want one for each of %v", seen, want)
	}
	for k, n := range seen {
		if _, ok := want[k]; !ok || n != 1 {
			t.Errorf("%d warnings for %s, want one for each of %v", n, k, want)
		}
	}
}

func warnings(t *testing.T, logs *logBuffer) []string {
	var out []string
	for _, rec := range logs.records(t) {
		if rec["level"] == "WARN" {
			b, _ := json.Marshal(rec)
			out = append(out, string(b))
		}
	}
	return out
}

// waitUnclaimed polls the dashboard's counts until they list exactly want ("kind name" in lower
// case: count).
func waitUnclaimed(t *testing.T, app *reprise.App, want map[string]int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		req := httptest.NewRequest(http.MethodGet, "/dashboard/api/counts?code=m", nil)
		rec := httptest.NewRecorder()
		app.Handler().ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("counts: %d %s", rec.Code, rec.Body)
		}
		var body struct {
			Unclaimed []struct {
				Kind, Name string
				Count      int
			}
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatal(err)
		}
		got := map[string]int{}
		for _, u := range body.Unclaimed {
			got[u.Kind+" "+strings.ToLower(u.Name)] = u.Count
		}
		if fmt.Sprint(got) == fmt.Sprint(want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("unclaimed work %v, want %v", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Register refuses names that no store can key: work of such a name would be stored but never
// claimed (SQLite's claim would see invalid UTF-8 as U+FFFD), so it panics, as for a duplicate.
func TestRegisterRefusesNamesNoStoreCanKey(t *testing.T) {
	bad := map[string]string{
		"not UTF-8": "orch-\xff",
		"NUL":       "orch\x00",
		"too long":  strings.Repeat("o", 2049),
	}
	for what, name := range bad {
		for kind, def := range map[string]reprise.Definition{
			"orchestrator": reprise.NewOrchestrator(name, func(*reprise.OrchestrationContext, string) (string, error) { return "", nil }),
			"activity":     reprise.NewActivity(name, func(context.Context, string) (string, error) { return "", nil }),
		} {
			t.Run(what+"/"+kind, func(t *testing.T) {
				app := reprise.NewApp(reprise.WithLogger(slog.New(slog.DiscardHandler)))
				defer func() {
					r := recover()
					if msg, _ := r.(string); !strings.Contains(msg, "Register") || !strings.Contains(msg, "name") {
						t.Fatalf("Register(%s %q) recovered %v, want a panic that names the fault", kind, name[:min(len(name), 10)], r)
					}
				}()
				app.Register(def)
			})
		}
	}
}

package reprisetest_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reprise-dev/reprise"
	"github.com/reprise-dev/reprise/internal/hosttest"
	"github.com/reprise-dev/reprise/reprisetest"
)

// recordReplayHistories rewrites testdata/replay from real runs on SQLite:
//
//	go test ./reprisetest -run TestReplayRecordings -record-replay-histories
var recordReplayHistories = flag.Bool("record-replay-histories", false, "rewrite testdata/replay from real runs")

// The versions of one orchestrator, replay_ship_order, as it changed:
//
//	v0  reserve, ship, wait for "Paid"                    (shipped before payment: a bug)
//	v1  reserve, wait for "Paid", ship                    (the fix; a breaking change, deployed when no v0 instance ran)
//	v2  reserve, fraud check, wait for "Paid", ship       (the fraud check guarded by IsPatched("fraud-check"))
//
// replayShipOrder is the current code: v2. replayShipOrderUnguarded is v2 without the guard,
// which is also the code once the patch is removed.
var (
	replayReserve = reprise.NewActivity("replay_reserve", func(_ context.Context, order string) (string, error) { return "reserved " + order, nil })
	replayFraud   = reprise.NewActivity("replay_fraud_check", func(_ context.Context, order string) (bool, error) { return true, nil })
	replayShip    = reprise.NewActivity("replay_ship", func(_ context.Context, order string) (string, error) { return "shipped " + order, nil })

	replayShipOrderV0 = replayShipOrderVersion(0)
	replayShipOrderV1 = replayShipOrderVersion(1)
	replayShipOrder   = replayShipOrderVersion(2)

	replayShipOrderUnguarded = reprise.NewOrchestrator("replay_ship_order", func(ctx *reprise.OrchestrationContext, order string) (string, error) {
		if _, err := replayReserve.Call(ctx, order).Await(); err != nil {
			return "", err
		}
		if _, err := replayFraud.Call(ctx, order).Await(); err != nil {
			return "", err
		}
		if _, err := reprise.WaitForEvent[reprise.None](ctx, "Paid", 0).Await(); err != nil {
			return "", err
		}
		return replayShip.Call(ctx, order).Await()
	})
)

func replayShipOrderVersion(v int) *reprise.Orchestrator[string, string] {
	return reprise.NewOrchestrator("replay_ship_order", func(ctx *reprise.OrchestrationContext, order string) (string, error) {
		if _, err := replayReserve.Call(ctx, order).Await(); err != nil {
			return "", err
		}
		if v == 0 {
			shipped, err := replayShip.Call(ctx, order).Await()
			if err != nil {
				return "", err
			}
			_, err = reprise.WaitForEvent[reprise.None](ctx, "Paid", 0).Await()
			return shipped, err
		}
		if v >= 2 && ctx.IsPatched("fraud-check") {
			if ok, err := replayFraud.Call(ctx, order).Await(); err != nil || !ok {
				return "", fmt.Errorf("fraud check: ok %v, err %v", ok, err)
			}
		}
		if _, err := reprise.WaitForEvent[reprise.None](ctx, "Paid", 0).Await(); err != nil {
			return "", err
		}
		return replayShip.Call(ctx, order).Await()
	})
}

// recordReplayShipOrders runs one version of the orchestrator on SQLite and writes, into dir, the
// exported history of one instance waiting for payment and of one that completed.
func recordReplayShipOrders(t *testing.T, orch *reprise.Orchestrator[string, string], version, dir string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	app := reprise.NewApp(reprise.WithSQLiteFile(filepath.Join(t.TempDir(), "record.db")),
		reprise.WithLogger(slog.New(slog.DiscardHandler)))
	app.Register(replayReserve, replayFraud, replayShip, orch)
	if err := app.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := app.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	}()
	c := app.Client()
	waiting, done := version+"-waiting-for-payment", version+"-completed"
	for _, id := range []string{waiting, done} {
		if _, err := orch.Start(ctx, c, "order "+id, reprise.WithInstanceID(id)); err != nil {
			t.Fatal(err)
		}
	}
	// Both parked at the wait, everything before it in the history; only then is one paid, so
	// that the event comes where the code waits for it.
	for _, id := range []string{waiting, done} {
		hosttest.WaitForHistory(t, c, id, "TaskCompleted", replayStepsBeforeTheWait(version))
	}
	if err := c.RaiseEvent(ctx, done, "Paid", nil); err != nil {
		t.Fatal(err)
	}
	if inst, err := c.WaitForCompletion(ctx, done); err != nil || inst.Status != reprise.StatusCompleted {
		t.Fatalf("%s: %+v, %v", done, inst, err)
	}
	for _, id := range []string{waiting, done} {
		data, err := c.ExportHistory(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, id+".json"), append(data, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// replayStepsBeforeTheWait is how many activities an instance of the version completes before it
// waits for "Paid".
func replayStepsBeforeTheWait(version string) int {
	if version == "v1" {
		return 1
	}
	return 2
}

// recordReplayVersions writes fresh recordings of every version: v1 and v2 into pass (the current code must
// replay them), v0 into fail (it must not).
func recordReplayVersions(t *testing.T, pass, fail string) {
	t.Helper()
	for _, d := range []string{pass, fail} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	recordReplayShipOrders(t, replayShipOrderV0, "v0", fail)
	recordReplayShipOrders(t, replayShipOrderV1, "v1", pass)
	recordReplayShipOrders(t, replayShipOrder, "v2", pass)
}

// replayReport stands in for a *testing.T: it keeps what CheckReplay reports.
type replayReport struct {
	testing.TB // nil: CheckReplay calls only the methods below
	mu         sync.Mutex
	errors     []string
}

func (r *replayReport) Helper() {}

func (r *replayReport) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

const (
	replayPassDir = "testdata/replay/ship_order"
	replayFailDir = "testdata/replay/ship_order_must_fail"
)

func TestReplayRecordings(t *testing.T) {
	if *recordReplayHistories {
		recordReplayVersions(t, replayPassDir, replayFailDir)
	}
	// The histories kept in testdata, and ones recorded now by the engine of this build: the
	// same verdicts on both.
	fresh := t.TempDir()
	recordReplayVersions(t, filepath.Join(fresh, "pass"), filepath.Join(fresh, "fail"))
	for _, dirs := range [][2]string{{replayPassDir, replayFailDir}, {filepath.Join(fresh, "pass"), filepath.Join(fresh, "fail")}} {
		pass, fail := dirs[0], dirs[1]
		t.Run(pass, func(t *testing.T) {
			reprisetest.CheckReplay(t, replayShipOrder, pass)

			// Every history that must fail does, named, with the non-determinism message.
			r := &replayReport{}
			reprisetest.CheckReplay(r, replayShipOrder, fail)
			files, _ := filepath.Glob(filepath.Join(fail, "*.json"))
			if len(files) == 0 || len(r.errors) != len(files) {
				t.Fatalf("%d failures for %d must-fail histories: %q", len(r.errors), len(files), r.errors)
			}
			for i, f := range files {
				if msg := r.errors[i]; !strings.Contains(msg, f) || !strings.Contains(msg, "non-deterministic") || !strings.Contains(msg, "IsPatched") {
					t.Errorf("failure for %s: %s", f, msg)
				}
			}

			// The change without its guard breaks the v1 instances, and not the v2 ones: once no
			// v1 instance runs, the patch can be removed.
			r = &replayReport{}
			reprisetest.CheckReplay(r, replayShipOrderUnguarded, filepath.Join(pass, "v1-*.json"))
			if len(r.errors) != 2 {
				t.Errorf("unguarded change on v1 histories: %q, want two failures", r.errors)
			}
			reprisetest.CheckReplay(t, replayShipOrderUnguarded, filepath.Join(pass, "v2-*.json"))

			// The code before the patch cannot replay what the patch recorded.
			r = &replayReport{}
			reprisetest.CheckReplay(r, replayShipOrderV1, filepath.Join(pass, "v2-*.json"))
			if len(r.errors) != 2 {
				t.Errorf("v1 code on v2 histories: %q, want two failures", r.errors)
			}
		})
	}
}

func TestCheckReplayArguments(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	notJSON := write("not-json.json", "{")
	empty := write("empty.json", "[]")
	other := write("other.json", `[{"id":-1,"type":0,"ts":"2026-01-01T00:00:00Z","name":"another_orchestrator","instanceId":"x"}]`)
	if err := os.Mkdir(filepath.Join(dir, "no-histories"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		def   reprise.Definition
		paths []string
		want  []string // one failure each, containing the text
	}{
		{"no paths", replayShipOrder, nil, []string{"no history files given"}},
		{"missing file", replayShipOrder, []string{filepath.Join(dir, "missing.json")}, []string{"selects no file"}},
		{"pattern matching nothing", replayShipOrder, []string{filepath.Join(dir, "*.history")}, []string{"selects no file"}},
		{"bad pattern", replayShipOrder, []string{filepath.Join(dir, "[")}, []string{"not a file, a directory or a valid glob pattern"}},
		{"empty directory", replayShipOrder, []string{filepath.Join(dir, "no-histories")}, []string{"holds no history"}},
		{"only directories", replayShipOrder, []string{filepath.Join(dir, "no-*")}, []string{"selects only directories"}},
		{"not JSON", replayShipOrder, []string{notJSON}, []string{notJSON, "not an exported history"}},
		{"empty history", replayShipOrder, []string{empty}, []string{empty, "does not begin with the start of an execution"}},
		{"another orchestrator's", replayShipOrder, []string{other}, []string{other, `orchestrator "another_orchestrator"`, "keep each orchestrator's histories apart"}},
		{"not an orchestrator", replayShip, []string{filepath.Join(replayPassDir, "v1-completed.json")}, []string{"not an orchestrator"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &replayReport{}
			reprisetest.CheckReplay(r, tc.def, tc.paths...)
			if len(r.errors) != 1 {
				t.Fatalf("failures %q, want one", r.errors)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.errors[0], w) {
					t.Errorf("failure %q lacks %q", r.errors[0], w)
				}
			}
		})
	}

	// A file named twice (as itself and by a pattern) is checked once.
	r := &replayReport{}
	f := filepath.Join(replayFailDir, "v0-completed.json")
	reprisetest.CheckReplay(r, replayShipOrder, f, filepath.Join(replayFailDir, "v0-c*.json"))
	if len(r.errors) != 1 {
		t.Errorf("failures %q, want the one file's", r.errors)
	}
}

// CheckReplay names the instance and the call its history recorded that the code did not make.
func TestCheckReplayNamesTheCalls(t *testing.T) {
	r := &replayReport{}
	reprisetest.CheckReplay(r, replayShipOrder, filepath.Join(replayFailDir, "v0-completed.json"))
	if len(r.errors) != 1 {
		t.Fatalf("failures %q, want one", r.errors)
	}
	if msg := r.errors[0]; !strings.Contains(msg, `"replay_ship"`) || !strings.Contains(msg, `instance "v0-completed"`) {
		t.Errorf("failure %q does not name the recorded call and the instance", msg)
	}
	if !errors.Is(reprise.ReplayHistory(replayShipOrder, replayRead(t, filepath.Join(replayFailDir, "v0-completed.json"))), reprise.ErrNonDeterminism) {
		t.Error("ReplayHistory does not agree")
	}
}

func replayRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

package reprise_test

import (
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reprise-dev/reprise"
)

// TestDeadlockTimeout: WithDeadlockTimeout reaches the engine. An orchestrator that blocks
// outside Await on its first run is given up after that timeout, logged as an error naming it
// and its instance, and run again once its lease expires, to completion.
func TestDeadlockTimeout(t *testing.T) {
	unblock := make(chan struct{})
	defer close(unblock)
	var runs atomic.Int32
	blocker := reprise.NewOrchestrator("blocker", func(ctx *reprise.OrchestrationContext, _ reprise.None) (string, error) {
		if runs.Add(1) == 1 {
			<-unblock // not Await: the engine cannot interrupt this
		}
		return "done", nil
	})
	logs := &logBuffer{}
	app := startApp(t, []reprise.Definition{blocker},
		reprise.WithDeadlockTimeout(50*time.Millisecond), reprise.WithLeaseDuration(time.Second),
		reprise.WithLogger(slog.New(slog.NewJSONHandler(logs, nil))))
	c := app.Client()
	if _, err := blocker.Start(testCtx(t), c, reprise.None{}, reprise.WithInstanceID("b")); err != nil {
		t.Fatal(err)
	}
	inst := waitDone(t, c, "b")
	if inst.Status != reprise.StatusCompleted {
		t.Fatalf("b is %s, want Completed", inst.Status)
	}
	var found bool
	for _, rec := range logs.records(t) {
		msg, _ := rec["msg"].(string)
		errText, _ := rec["err"].(string)
		if strings.Contains(msg, "does not yield") && rec["level"] == "ERROR" {
			found = true
			for _, want := range []string{`orchestrator "blocker"`, `instance "b"`, "within 50ms"} {
				if !strings.Contains(errText, want) {
					t.Errorf("the deadlock error %q does not say %s", errText, want)
				}
			}
		}
	}
	if !found {
		t.Fatal("no deadlock was logged")
	}
}

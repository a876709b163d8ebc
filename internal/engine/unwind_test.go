package engine_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/reprise-dev/reprise/internal/engine"
	"github.com/reprise-dev/reprise/internal/history"
	"github.com/reprise-dev/reprise/internal/replay"
	"github.com/reprise-dev/reprise/store"
)

// TestTerminateOfAnOrchestratorWhoseDeferBlocks: terminating an orchestrator whose deferred
// calls block ends the instance anyway: the unwinding is given up after the deadlock timeout
// and logged, and the episode's slot (the only one) is free for the next instance.
func TestTerminateOfAnOrchestratorWhoseDeferBlocks(t *testing.T) {
	st := openSQLite(t)
	block := make(chan struct{})
	defer close(block)
	parked := make(chan struct{}, 1)
	reg := registry{orchestrators: map[string]replay.Func{
		"stubborn": func(c *replay.Context) ([]byte, error) {
			defer func() { <-block }() // runs when the terminate unwinds the orchestrator
			select {                   // not blocking: a run again (after a false deadlock on a loaded machine) must not stop here
			case parked <- struct{}{}:
			default:
			}
			return c.WaitForEvent("never", 0).Await()
		},
		"quick": func(c *replay.Context) ([]byte, error) { return []byte(`"ok"`), nil },
	}}
	logs := &logRecorder{}
	newEngine(t, engine.Options{Store: st, Registry: reg, Logger: slog.New(logs), MaxConcurrentOrchestrations: 1,
		DeadlockTimeout: 500 * time.Millisecond, CacheSize: 10})
	start(t, st, "stubborn", "s", nil)
	<-parked

	ev := history.New(history.ExecutionTerminated, time.Now().UTC())
	ev.Input = []byte(`"enough"`)
	data, err := history.EncodeEvent(ev)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SendMessage(t.Context(), store.Message{InstanceID: "s", Data: data}); err != nil {
		t.Fatal(err)
	}
	if inst := waitDone(t, st, "s", 10*time.Second); inst.Status != store.StatusTerminated {
		t.Fatalf("instance s is %s, want Terminated", inst.Status)
	}
	logs.wait(t, 10*time.Second, "abandoned", "deferred calls block", `"stubborn"`)

	start(t, st, "quick", "q", nil)
	if inst := waitDone(t, st, "q", 10*time.Second); inst.Status != store.StatusCompleted {
		t.Fatalf("instance q is %s, want Completed", inst.Status)
	}
}

package replay_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/reprise-dev/reprise/internal/history"
	"github.com/reprise-dev/reprise/internal/replay"
)

func started(name, id string) []history.Event {
	now := time.Now().UTC()
	start := history.New(history.ExecutionStarted, now)
	start.Name, start.InstanceID, start.ExecutionID = name, id, "e1"
	return []history.Event{history.New(history.OrchestratorStarted, now), start}
}

// TestYieldTimeout: Run gives up on an orchestrator that does not yield in time, with an error
// naming it and its instance, and Close does not wait for the stuck goroutine; an orchestrator
// that yields in time is not affected.
func TestYieldTimeout(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	x := replay.New(func(c *replay.Context) ([]byte, error) {
		<-block
		return nil, nil
	})
	x.SetYieldTimeout(50 * time.Millisecond)
	res, err := x.Run(nil, started("blocker", "i1"))
	var dl *replay.DeadlockError
	if !errors.As(err, &dl) || res != nil {
		t.Fatalf("Run = %v, %v; want a *DeadlockError", res, err)
	}
	for _, want := range []string{`orchestrator "blocker"`, `instance "i1"`, "50ms"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not say %s", err, want)
		}
	}
	x.Close() // must return although the orchestrator's goroutine is stuck

	y := replay.New(func(c *replay.Context) ([]byte, error) {
		return c.CallActivity("a", nil, nil).Await()
	})
	y.SetYieldTimeout(time.Minute)
	res, err = y.Run(nil, started("fine", "i2"))
	if err != nil || res == nil || res.Done || len(res.Actions) != 1 {
		t.Fatalf("Run = %+v, %v; want one scheduled activity", res, err)
	}
	y.Close()
}

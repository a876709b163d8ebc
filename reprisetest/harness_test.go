package reprisetest_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/reprise-dev/reprise"
	"github.com/reprise-dev/reprise/reprisetest"
)

var greet = reprise.NewActivity("greet", func(_ context.Context, name string) (string, error) {
	return "Hello " + name + "!", nil
})

var longWait = reprise.NewOrchestrator("long_wait", func(ctx *reprise.OrchestrationContext, name string) (string, error) {
	start := ctx.Now()
	if _, err := ctx.CreateTimer(30 * 24 * time.Hour).Await(); err != nil {
		return "", err
	}
	g, err := greet.Call(ctx, name).Await()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s after %v", g, ctx.Now().Sub(start)), nil
})

func TestThirtyDayTimer(t *testing.T) {
	t.Parallel()
	h := reprisetest.New(t, greet, longWait)
	began := time.Now()
	r := h.Run(longWait, "Tokyo")
	r.RequireStatus(reprise.StatusCompleted)
	if got, want := reprisetest.Output[string](r), "Hello Tokyo! after 720h0m0s"; got != want {
		t.Fatalf("output %q, want %q", got, want)
	}
	if got, want := h.Now(), reprisetest.DefaultStart.Add(30*24*time.Hour); !got.Equal(want) {
		t.Errorf("clock reads %v, want %v", got, want)
	}
	want := []string{"OrchestratorStarted", "ExecutionStarted", "TimerCreated",
		"OrchestratorStarted", "TimerFired", "TaskScheduled",
		"OrchestratorStarted", "TaskCompleted", "ExecutionCompleted"}
	if got := r.EventTypes(); !slices.Equal(got, want) {
		t.Errorf("history %v\nwant %v\n%s", got, want, r.Dump())
	}
	t.Logf("30 virtual days in %v", time.Since(began))
}

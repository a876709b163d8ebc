package reprise_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reprise-dev/reprise"
	"github.com/reprise-dev/reprise/internal/hosttest"
)

// TestRewindHistoryAsShown rewinds an instance twice (once while the activity still fails, once
// after it was fixed) and checks the history the management API and the dashboard show: every
// attempt of the task, the re-runs included, is shown with its function name, input and
// scheduled time, and a task scheduled after the rewind carries its own scheduled time.
func TestRewindHistoryAsShown(t *testing.T) {
	var broken atomic.Bool
	broken.Store(true)
	step := reprise.NewActivity("rewind_step", func(ctx context.Context, s string) (string, error) {
		if s == "fragile" && broken.Load() {
			return "", errors.New("downstream unavailable")
		}
		return s + " done", nil
	})
	orch := reprise.NewOrchestrator("rewind_shown", func(ctx *reprise.OrchestrationContext, _ reprise.None) (string, error) {
		if _, err := step.Call(ctx, "solid").Await(); err != nil {
			return "", err
		}
		retry := reprise.WithRetry(reprise.RetryPolicy{FirstInterval: time.Millisecond, MaxAttempts: 2})
		if _, err := step.Call(ctx, "fragile", retry).Await(); err != nil {
			return "", err
		}
		return step.Call(ctx, "after").Await()
	})
	app := reprise.NewApp(append(hosttest.Options(t), reprise.WithAnonymousManagement())...)
	app.Register(step, orch)
	srv := hosttest.Serve(t, app)
	c := app.Client()
	ctx := testCtx(t)
	id, err := orch.Start(ctx, c, reprise.None{}, reprise.WithInstanceID("rw"))
	if err != nil {
		t.Fatal(err)
	}
	if inst := hosttest.WaitDone(t, app, id); inst.Status != reprise.StatusFailed {
		t.Fatalf("status %s, want Failed", inst.Status)
	}
	rewind := func(n int) {
		t.Helper()
		if err := c.Rewind(ctx, id, fmt.Sprintf("rewind %d", n)); err != nil {
			t.Fatal(err)
		}
		waitForHistory(t, c, id, "ExecutionRewound", n)
	}
	rewind(1) // still broken: the re-run fails again
	if inst := hosttest.WaitDone(t, app, id); inst.Status != reprise.StatusFailed {
		t.Fatalf("after the first rewind: status %s, want Failed", inst.Status)
	}
	broken.Store(false)
	rewind(2)
	if inst := hosttest.WaitDone(t, app, id); inst.Status != reprise.StatusCompleted {
		t.Fatalf("after the second rewind: status %s (%s), want Completed", inst.Status, inst.Output)
	}

	// The management API's history.
	var status struct {
		HistoryEvents []struct {
			EventType     string
			FunctionName  string
			Input         any
			ScheduledTime string
			Timestamp     string
		}
	}
	r := hosttest.Do(t, "GET", srv.URL+"/runtime/webhooks/durabletask/instances/"+id+"?showHistory=true&showHistoryOutput=true&showInput=true", nil)
	if r.StatusCode != 200 {
		t.Fatalf("status: %d %s", r.StatusCode, r.Body)
	}
	r.JSON(t, &status)
	var got []string
	var lastRewind time.Time
	for _, e := range status.HistoryEvents {
		ts := parseTime(t, e.Timestamp)
		switch e.EventType {
		case "ExecutionRewound":
			lastRewind = ts
		case "TaskCompleted", "TaskFailed":
			got = append(got, fmt.Sprintf("%s %v", e.EventType, e.Input))
			if e.FunctionName != "rewind_step" || e.Input == nil || e.ScheduledTime == "" {
				t.Errorf("%s at %s has function %q, input %v, scheduled %q; want all three", e.EventType, e.Timestamp, e.FunctionName, e.Input, e.ScheduledTime)
				continue
			}
			// A task run after a rewind was scheduled by it or later, not in the failed episode.
			if sched := parseTime(t, e.ScheduledTime); sched.Before(lastRewind) || sched.After(ts) {
				t.Errorf("%s %v: scheduled %s, rewound %s, completed %s; want rewound ≤ scheduled ≤ completed",
					e.EventType, e.Input, e.ScheduledTime, lastRewind.Format(time.RFC3339Nano), e.Timestamp)
			}
		}
	}
	want := []string{"TaskCompleted solid", "TaskFailed fragile", "TaskFailed fragile", "TaskFailed fragile", "TaskCompleted fragile", "TaskCompleted after"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("task completions %q, want %q", got, want)
	}

	// The dashboard's timeline: one bar per attempt, re-runs included, each closed.
	var detail struct {
		Timeline struct {
			Spans []struct{ Kind, Name, State, Input, Start, End string }
		}
	}
	r = hosttest.Do(t, "GET", srv.URL+"/dashboard/api/instances/"+id, nil)
	if r.StatusCode != 200 {
		t.Fatalf("dashboard detail: %d %s", r.StatusCode, r.Body)
	}
	r.JSON(t, &detail)
	var bars []string
	for _, s := range detail.Timeline.Spans {
		if s.Kind == "activity" {
			bars = append(bars, s.State+" "+s.Input)
		}
	}
	wantBars := []string{`completed "solid"`, `failed "fragile"`, `failed "fragile"`, `failed "fragile"`, `completed "fragile"`, `completed "after"`}
	if strings.Join(bars, ",") != strings.Join(wantBars, ",") {
		t.Errorf("activity bars %q, want %q", bars, wantBars)
	}
}

func parseTime(t *testing.T, s string) time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("time %q: %v", s, err)
	}
	return ts
}

package reprise_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/reprise-dev/reprise"
)

// TestClientErrorTexts pins the Client's errors for the common mistakes: each says once what went
// wrong and what to do, keeps its sentinel for errors.Is, and does not pass on the store's wording.
func TestClientErrorTexts(t *testing.T) {
	done := reprise.NewOrchestrator("done", func(ctx *reprise.OrchestrationContext, _ reprise.None) (string, error) {
		return "ok", nil
	})
	wait := reprise.NewOrchestrator("wait", func(ctx *reprise.OrchestrationContext, _ reprise.None) (reprise.None, error) {
		_, err := ctx.CreateTimer(time.Hour).Await()
		return reprise.None{}, err
	})
	app := startApp(t, []reprise.Definition{done, wait})
	c := app.Client()
	ctx := testCtx(t)
	if _, err := done.Start(ctx, c, reprise.None{}, reprise.WithInstanceID("d")); err != nil {
		t.Fatal(err)
	}
	waitDone(t, c, "d")
	if _, err := wait.Start(ctx, c, reprise.None{}, reprise.WithInstanceID("w")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitForStart(ctx, "w"); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name     string
		err      error
		sentinel error
		want     string
	}{
		{"terminate finished", c.Terminate(ctx, "d", "why"), reprise.ErrInstanceFinished,
			`terminate "d": instance has finished (Completed); it takes no more events or commands`},
		{"raise on finished", c.RaiseEvent(ctx, "d", "Approved", true), reprise.ErrInstanceFinished,
			`raise event "Approved" on "d": instance has finished (Completed); it takes no more events or commands`},
		{"rewind running", c.Rewind(ctx, "w", ""), reprise.ErrNotFailed,
			`rewind "w": instance is not in the Failed state (Running); only a Failed instance can be rewound`},
		{"purge active", c.PurgeInstance(ctx, "w"), reprise.ErrInstanceActive,
			`purge "w": instance is still active; terminate it first`},
		{"start active ID", second(wait.Start(ctx, c, reprise.None{}, reprise.WithInstanceID("w"))), reprise.ErrInstanceExists,
			`start orchestrator "wait" as "w": instance already exists (Running); wait for it to finish or terminate it, or start the orchestration under another instance ID`},
		{"start finished ID, never reused", second(done.Start(ctx, c, reprise.None{}, reprise.WithInstanceID("d"), reprise.WithReusePolicy(reprise.ReuseNever))), reprise.ErrInstanceExists,
			`start orchestrator "done" as "d": instance already exists (Completed); purge it, start with ReuseIfFinished, or choose another instance ID`},
		{"get unknown", second(c.GetInstance(ctx, "nope")), reprise.ErrInstanceNotFound,
			`get instance "nope": instance not found in task hub "default"`},
		{"purge unknown", c.PurgeInstance(ctx, "nope"), reprise.ErrInstanceNotFound,
			`purge "nope": instance not found in task hub "default"`},
		{"bad token", third(c.ListInstances(ctx, reprise.Query{ContinuationToken: "x"})), nil,
			`list instances: invalid continuation token "x": pass back the token of a previous page unchanged`},
	} {
		if tc.err == nil || tc.err.Error() != tc.want {
			t.Errorf("%s: got\n%v\nwant\n%s", tc.name, tc.err, tc.want)
		}
		if tc.sentinel != nil && !errors.Is(tc.err, tc.sentinel) {
			t.Errorf("%s: %v is not %v", tc.name, tc.err, tc.sentinel)
		}
	}
}

func second[T any](_ T, err error) error        { return err }
func third[T, U any](_ T, _ U, err error) error { return err }

// TestPlainErrorHasNoGoTypeName: an error from errors.New or fmt.Errorf is recorded by its message
// alone; "*errors.errorString" names Go's internals, not what failed.
func TestPlainErrorHasNoGoTypeName(t *testing.T) {
	fails := reprise.NewActivity("fails", func(ctx context.Context, _ reprise.None) (reprise.None, error) {
		return reprise.None{}, errors.New("out of coffee")
	})
	orch := reprise.NewOrchestrator("calls_fails", func(ctx *reprise.OrchestrationContext, _ reprise.None) (reprise.None, error) {
		return fails.Call(ctx, reprise.None{}).Await()
	})
	app := startApp(t, []reprise.Definition{fails, orch})
	id, err := orch.Start(testCtx(t), app.Client(), reprise.None{})
	if err != nil {
		t.Fatal(err)
	}
	inst := waitDone(t, app.Client(), id)
	if inst.Failure == nil || inst.Failure.Inner == nil {
		t.Fatalf("failure %+v, want the activity's failure inside", inst.Failure)
	}
	if f := inst.Failure.Inner; f.Type != "" || f.Message != "out of coffee" {
		t.Errorf("activity failure: type %q, message %q; want no type and the message", f.Type, f.Message)
	}
	if want := `activity "fails" (task 0) failed: out of coffee`; inst.Failure.Message != want {
		t.Errorf("orchestration failure %q, want %q", inst.Failure.Message, want)
	}
}

// TestSuspendAndResumeAreIdempotent: resuming a running instance and suspending a suspended one
// are accepted and change nothing (docs/http-api.md lists this deviation from the extension).
func TestSuspendAndResumeAreIdempotent(t *testing.T) {
	gate := reprise.NewOrchestrator("gate", func(ctx *reprise.OrchestrationContext, _ reprise.None) (string, error) {
		return reprise.WaitForEvent[string](ctx, "open", 0).Await()
	})
	app := startApp(t, []reprise.Definition{gate})
	ctx := testCtx(t)
	c := app.Client()
	id, err := gate.Start(ctx, c, reprise.None{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitForStart(ctx, id); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		do   func() error
		want reprise.RuntimeStatus
	}{
		{func() error { return c.Resume(ctx, id, "not suspended") }, reprise.StatusRunning},
		{func() error { return c.Suspend(ctx, id, "first") }, reprise.StatusSuspended},
		{func() error { return c.Suspend(ctx, id, "second") }, reprise.StatusSuspended},
		{func() error { return c.Resume(ctx, id, "first") }, reprise.StatusRunning},
		{func() error { return c.Resume(ctx, id, "second") }, reprise.StatusRunning},
	}
	// Each command is carried out as an event in the history: wait for it, then look.
	eventOf := map[reprise.RuntimeStatus]string{reprise.StatusSuspended: "ExecutionSuspended", reprise.StatusRunning: "ExecutionResumed"}
	seen := map[string]int{}
	for i, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		seen[eventOf[s.want]]++
		waitForHistory(t, c, id, eventOf[s.want], seen[eventOf[s.want]])
		inst, err := c.GetInstance(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if inst.Status != s.want {
			t.Fatalf("after step %d: %s, want %s", i, inst.Status, s.want)
		}
	}
	if err := c.RaiseEvent(ctx, id, "open", "done"); err != nil {
		t.Fatal(err)
	}
	if inst := waitDone(t, c, id); inst.Status != reprise.StatusCompleted || string(inst.Output) != `"done"` {
		t.Fatalf("%s %s, want Completed \"done\"", inst.Status, inst.Output)
	}
}

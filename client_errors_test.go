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

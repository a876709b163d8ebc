package reprisetest_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/reprise-dev/reprise"
	"github.com/reprise-dev/reprise/reprisetest"
)

// The definitions of TestSameAsTheApp: every kind of step, awaited one at a time so that the
// history's order does not depend on which goroutine finishes first.
var (
	flaky = reprise.NewActivity("flaky", func(ctx context.Context, s string) (string, error) {
		if info, _ := reprise.ActivityInfoFrom(ctx); info.Attempt == 1 {
			return "", errors.New("first attempts fail")
		}
		return "ok " + s, nil
	})
	child = reprise.NewOrchestrator("child", func(ctx *reprise.OrchestrationContext, s string) (string, error) {
		return greet.Call(ctx, s).Await()
	})
	tour = reprise.NewOrchestrator("tour", func(ctx *reprise.OrchestrationContext, d time.Duration) ([]string, error) {
		var out []string
		g, err := greet.Call(ctx, "one").Await()
		if err != nil {
			return nil, err
		}
		out = append(out, g)
		if _, err := ctx.CreateTimer(d).Await(); err != nil {
			return nil, err
		}
		c, err := child.Call(ctx, "two").Await()
		if err != nil {
			return nil, err
		}
		out = append(out, c)
		f, err := flaky.Call(ctx, "three", reprise.WithRetry(reprise.RetryPolicy{FirstInterval: d, MaxAttempts: 3})).Await()
		if err != nil {
			return nil, err
		}
		out = append(out, f)
		if err := ctx.SetCustomStatus("waiting"); err != nil {
			return nil, err
		}
		_, err = reprise.WaitForEvent[string](ctx, "nobody", d).Await()
		out = append(out, "event: "+errorText(err))
		return out, nil
	})
)

func errorText(err error) string {
	if errors.Is(err, reprise.ErrTimeout) {
		return "timed out"
	}
	if err != nil {
		return err.Error()
	}
	return "raised"
}

// TestSameAsTheApp runs one orchestrator on the harness and on a real App on SQLite (real time,
// short waits): the same status, output, custom status and history event types.
func TestSameAsTheApp(t *testing.T) {
	t.Parallel()
	const wait = 20 * time.Millisecond
	h := reprisetest.New(t, greet, flaky, child, tour)
	virtual := h.Run(tour, wait)
	virtual.RequireStatus(reprise.StatusCompleted)

	app := reprise.NewApp(reprise.WithSQLiteFile(filepath.Join(t.TempDir(), "app.db")), reprise.WithRelaxedDurability(),
		reprise.WithoutMetrics(), reprise.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	app.Register(greet, flaky, child, tour)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := app.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := app.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	id, err := tour.Start(ctx, app.Client(), wait)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := app.Client().WaitForCompletion(ctx, id); err != nil {
		t.Fatal(err)
	}
	real, err := app.Client().GetInstance(ctx, id, reprise.WithHistory())
	if err != nil {
		t.Fatal(err)
	}

	if real.Status != virtual.Status {
		t.Errorf("status: app %v, harness %v", real.Status, virtual.Status)
	}
	if string(real.Output) != string(virtual.Instance.Output) {
		t.Errorf("output: app %s, harness %s", real.Output, virtual.Instance.Output)
	}
	if string(real.CustomStatus) != string(virtual.Instance.CustomStatus) {
		t.Errorf("custom status: app %s, harness %s", real.CustomStatus, virtual.Instance.CustomStatus)
	}
	var realTypes []string
	for _, e := range real.History {
		realTypes = append(realTypes, e.Type)
	}
	if got := virtual.EventTypes(); !slices.Equal(got, realTypes) {
		t.Errorf("history event types differ\napp:     %v\nharness: %v\n%s", realTypes, got, virtual.Dump())
	}
	if want := `["Hello one!","Hello two!","ok three","event: timed out"]`; string(virtual.Instance.Output) != want {
		t.Errorf("output %s, want %s", virtual.Instance.Output, want)
	}
	// Virtual time: the timer, one retry wait and the event timeout, exactly.
	if got := h.Now().Sub(reprisetest.DefaultStart()); got != 3*wait {
		t.Errorf("virtual time passed %v, want %v", got, 3*wait)
	}
}

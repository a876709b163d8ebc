package reprise_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reprise-dev/reprise"
)

// patchFeatures run on every store (TestFeatures).
var patchFeatures = []struct {
	name string
	test func(t *testing.T, s featureStore)
}{
	{"PatchedOrchestratorAcrossADeploy", testPatchedOrchestratorAcrossADeploy},
	{"PatchAfterContinueAsNew", testPatchAfterContinueAsNew},
}

var patchStep = reprise.NewActivity("patch_step", func(_ context.Context, s string) (string, error) { return s, nil })

// patchOrderV1 is the code before the deploy; patchOrderV2 the same orchestrator with two
// patches: one before the wait for "go" (which instances waiting already passed) and one after
// it (which they have not reached).
var (
	patchOrderV1 = reprise.NewOrchestrator("patch_order", func(ctx *reprise.OrchestrationContext, _ reprise.None) ([]string, error) {
		return patchOrder(ctx, false)
	})
	patchOrderV2 = reprise.NewOrchestrator("patch_order", func(ctx *reprise.OrchestrationContext, _ reprise.None) ([]string, error) {
		return patchOrder(ctx, true)
	})
)

func patchOrder(ctx *reprise.OrchestrationContext, patched bool) ([]string, error) {
	var out []string
	step := func(s string) error {
		v, err := patchStep.Call(ctx, s).Await()
		out = append(out, v)
		return err
	}
	if err := step("a"); err != nil {
		return nil, err
	}
	if patched && ctx.IsPatched("before-wait") {
		if err := step("extra-before"); err != nil {
			return nil, err
		}
	}
	if _, err := reprise.WaitForEvent[reprise.None](ctx, "go", 0).Await(); err != nil {
		return nil, err
	}
	if patched && ctx.IsPatched("after-wait") {
		if err := step("extra-after"); err != nil {
			return nil, err
		}
	}
	// Asked again: the first answer holds.
	if patched && ctx.IsPatched("before-wait") != slices.Contains(out, "extra-before") {
		return nil, errors.New("IsPatched changed its answer within one execution")
	}
	return out, step("b")
}

// startOn starts an App on the store of opts (reused across "deploys"), shut down at the end of
// the test unless the test shut it down already.
func startOn(t *testing.T, opts []reprise.Option, defs ...reprise.Definition) *reprise.App {
	t.Helper()
	app := reprise.NewApp(append([]reprise.Option{reprise.WithLogger(slog.New(slog.DiscardHandler))}, opts...)...)
	app.Register(defs...)
	if err := app.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := app.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return app
}

// patchMarkers returns the names of an instance's PatchApplied events, in history order.
func patchMarkers(t *testing.T, c *reprise.Client, id string) []string {
	t.Helper()
	inst, err := c.GetInstance(context.Background(), id, reprise.WithHistory())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range inst.History {
		if e.Type == "PatchApplied" {
			names = append(names, e.Name)
		}
	}
	return names
}

// An instance started before the deploy of a patch keeps its old path where it had passed the
// patch and takes the new one where it had not; an instance started after takes both, and gives
// the same answers when another host replays it from the store. Both histories replay against
// the patched code (ReplayHistory), and the new one fails against the old code.
func testPatchedOrchestratorAcrossADeploy(t *testing.T, s featureStore) {
	ctx := testCtx(t)
	opts := s.options(t)

	first := startOn(t, opts, patchStep, patchOrderV1)
	if _, err := patchOrderV1.Start(ctx, first.Client(), reprise.None{}, reprise.WithInstanceID("old")); err != nil {
		t.Fatal(err)
	}
	waitForHistory(t, first.Client(), "old", "TaskCompleted", 1) // committed with the wait for "go"
	if err := first.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	second := startOn(t, opts, patchStep, patchOrderV2)
	c := second.Client()
	if _, err := patchOrderV2.Start(ctx, c, reprise.None{}, reprise.WithInstanceID("new")); err != nil {
		t.Fatal(err)
	}
	waitForHistory(t, c, "new", "TaskCompleted", 2) // a and extra-before; now waiting for "go"
	if err := c.RaiseEvent(ctx, "old", "go", nil); err != nil {
		t.Fatal(err)
	}
	if got, want := output[[]string](t, waitDone(t, c, "old")), []string{"a", "extra-after", "b"}; !slices.Equal(got, want) {
		t.Fatalf("old instance: output %q, want %q", got, want)
	}
	if got := patchMarkers(t, c, "old"); !slices.Equal(got, []string{"after-wait"}) {
		t.Fatalf("old instance: markers %q, want only after-wait", got)
	}
	if err := second.Shutdown(ctx); err != nil { // "new" is cached here; the next host replays it
		t.Fatal(err)
	}

	third := startOn(t, opts, patchStep, patchOrderV2)
	c = third.Client()
	if err := c.RaiseEvent(ctx, "new", "go", nil); err != nil {
		t.Fatal(err)
	}
	if got, want := output[[]string](t, waitDone(t, c, "new")), []string{"a", "extra-before", "extra-after", "b"}; !slices.Equal(got, want) {
		t.Fatalf("new instance: output %q, want %q", got, want)
	}
	if got := patchMarkers(t, c, "new"); !slices.Equal(got, []string{"before-wait", "after-wait"}) {
		t.Fatalf("new instance: markers %q, want before-wait and after-wait once each", got)
	}

	for _, id := range []string{"old", "new"} {
		exported, err := c.ExportHistory(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if err := reprise.ReplayHistory(patchOrderV2, exported); err != nil {
			t.Errorf("%s: the patched code must replay its history: %v", id, err)
		}
		err = reprise.ReplayHistory(patchOrderV1, exported)
		if !errors.Is(err, reprise.ErrNonDeterminism) {
			t.Errorf("%s: the code before the patch replayed a patched history: %v, want non-determinism", id, err)
		}
	}
}

// Continue-as-new starts an execution that has not passed any patch: it takes the patch and
// records its own marker, and the previous execution's marker does not carry over.
func testPatchAfterContinueAsNew(t *testing.T, s featureStore) {
	orch := reprise.NewOrchestrator("patch_generations", func(ctx *reprise.OrchestrationContext, n int) ([]bool, error) {
		patched := ctx.IsPatched("gen")
		if n == 0 {
			return nil, ctx.ContinueAsNew(1, false)
		}
		return []bool{patched}, nil
	})
	app := s.start(t, []reprise.Definition{orch})
	c := app.Client()
	id, err := orch.Start(testCtx(t), c, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := output[[]bool](t, waitDone(t, c, id)); !slices.Equal(got, []bool{true}) {
		t.Fatalf("output %v, want [true]", got)
	}
	if got := patchMarkers(t, c, id); !slices.Equal(got, []string{"gen"}) {
		t.Fatalf("markers of the second execution %q, want its own one", got)
	}
}

// A patch name no store can keep is a programming error: the orchestration fails and says why.
func TestIsPatchedRefusesBadNames(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		{"", "empty patch name"},
		{"bad\xff", "not valid UTF-8"},
		{"nul\x00", "NUL"},
		{string(make([]byte, 3000)), "the limit is 2048"},
	} {
		orch := reprise.NewOrchestrator("bad_patch", func(ctx *reprise.OrchestrationContext, _ reprise.None) (bool, error) {
			return ctx.IsPatched(tc.name), nil
		})
		app := startApp(t, []reprise.Definition{orch})
		id, err := orch.Start(testCtx(t), app.Client(), reprise.None{})
		if err != nil {
			t.Fatal(err)
		}
		inst := waitDone(t, app.Client(), id)
		if inst.Status != reprise.StatusFailed || inst.Failure == nil ||
			!strings.Contains(inst.Failure.Message, "IsPatched") || !strings.Contains(inst.Failure.Message, tc.want) {
			t.Errorf("name %q: status %s, failure %+v; want a failure naming IsPatched and %q", tc.name, inst.Status, inst.Failure, tc.want)
		}
	}
}

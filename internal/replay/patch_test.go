package replay

import (
	"errors"
	"fmt"
	"testing"

	"github.com/reprise-dev/reprise/internal/history"
	"github.com/reprise-dev/reprise/store"
)

// callNamed calls an activity by name with no input and no retry. It takes CallActivity as a
// value so that it compiles with the signature before and after the activity version parameter
// (issue 15's versioning work adds it); fold it into plain calls once both have landed.
func callNamed(c *Context, name string) *Task {
	switch call := any(c.CallActivity).(type) {
	case func(string, []byte, *RetryPolicy) *Task:
		return call(name, nil, nil)
	case func(string, string, []byte, *RetryPolicy) *Task:
		return call(name, "", nil, nil)
	}
	panic(fmt.Sprintf("replay tests: Context.CallActivity is a %T: adapt callNamed", c.CallActivity))
}

// patchedOrch is the code after the deploy of the patch "extra": between the activities a and b
// it calls the activity extra, if the execution takes the patch. It records IsPatched's answers:
// one per call, two calls per run, which must agree.
func patchedOrch(answers *[]bool) Func {
	return func(c *Context) ([]byte, error) {
		if _, err := callNamed(c, "a").Await(); err != nil {
			return nil, err
		}
		p := c.IsPatched("extra")
		*answers = append(*answers, p)
		if p {
			if _, err := callNamed(c, "extra").Await(); err != nil {
				return nil, err
			}
		}
		*answers = append(*answers, c.IsPatched("extra"))
		if _, err := callNamed(c, "b").Await(); err != nil {
			return nil, err
		}
		return []byte(`"done"`), nil
	}
}

// unguardedOrch is the same change deployed without IsPatched; also the code once the patch is
// removed (the new path kept).
func unguardedOrch(c *Context) ([]byte, error) {
	for _, name := range []string{"a", "extra", "b"} {
		if _, err := callNamed(c, name).Await(); err != nil {
			return nil, err
		}
	}
	return []byte(`"done"`), nil
}

// beforePatch is a history the code before the deploy wrote: a, then b (it has not finished).
func beforePatch() []history.Event {
	return []history.Event{started(0), execStarted(`null`), scheduled(0, "a"),
		started(1), completed(0, `1`), scheduled(1, "b")}
}

func patchMarker(name string) history.Event {
	e := history.New(history.PatchApplied, t0)
	e.Name = name
	return e
}

func TestIsPatchedNewExecutionRecordsTheMarker(t *testing.T) {
	var answers []bool
	x := New(patchedOrch(&answers))
	defer x.Close()
	ep1 := []history.Event{started(0), execStarted(`null`)}
	res, err := x.Run(nil, ep1)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Markers) != 0 || len(answers) != 0 {
		t.Fatalf("episode 1: markers %v, answers %v; the call is not reached yet", res.Markers, answers)
	}
	hist := append(ep1, res.Actions...)
	ep2 := []history.Event{started(1), completed(0, `1`)}
	res, err = x.Run(nil, ep2)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Markers) != 1 || res.Markers[0].Type != history.PatchApplied || res.Markers[0].Name != "extra" || res.Markers[0].ID != -1 {
		t.Fatalf("episode 2 markers = %+v, want one PatchApplied \"extra\" without a sequence number", res.Markers)
	}
	if len(res.Actions) != 1 || res.Actions[0].Name != "extra" {
		t.Fatalf("episode 2 actions = %+v, want the patched activity", res.Actions)
	}
	if len(answers) != 1 || !answers[0] {
		t.Fatalf("answers = %v, want [true]", answers)
	}
	hist = append(append(append(hist, ep2...), res.Markers...), res.Actions...)
	ep3 := []history.Event{started(2), completed(1, `2`)}
	res, err = x.Run(nil, ep3)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Markers) != 0 {
		t.Fatalf("episode 3 recorded the marker again: %+v", res.Markers)
	}
	if len(answers) != 2 || !answers[1] {
		t.Fatalf("answers = %v, want the second call to agree", answers)
	}
	hist = append(append(hist, ep3...), res.Actions...)

	// A cache miss: the stored history replayed from the start gives the same answers and
	// records nothing.
	var again []bool
	y := New(patchedOrch(&again))
	defer y.Close()
	res, err = y.Run(hist, []history.Event{started(3), completed(2, `3`)})
	if err != nil {
		t.Fatalf("replay of the patched history: %v", err)
	}
	if !res.Done || res.Status != store.StatusCompleted || len(res.Markers) != 0 {
		t.Fatalf("replay: done %v status %v markers %v", res.Done, res.Status, res.Markers)
	}
	if len(again) != 2 || !again[0] || !again[1] {
		t.Fatalf("replayed answers = %v, want [true true]", again)
	}
}

func TestIsPatchedReplayOfAnOlderHistoryKeepsTheOldPath(t *testing.T) {
	var answers []bool
	x := New(patchedOrch(&answers))
	defer x.Close()
	res, err := x.Run(beforePatch(), []history.Event{started(2), completed(1, `2`)})
	if err != nil {
		t.Fatalf("the patched code must replay a history from before the patch: %v", err)
	}
	if !res.Done || res.Status != store.StatusCompleted || len(res.Actions) != 0 || len(res.Markers) != 0 {
		t.Fatalf("result %+v, want completed with no actions and no marker", res)
	}
	if len(answers) != 2 || answers[0] || answers[1] {
		t.Fatalf("answers = %v, want [false false]", answers)
	}
}

func TestIsPatchedExecutionThatHadNotReachedThePointTakesThePatch(t *testing.T) {
	// Before the deploy the execution scheduled a and waited; a's result arrives afterwards.
	old := []history.Event{started(0), execStarted(`null`), scheduled(0, "a")}
	var answers []bool
	x := New(patchedOrch(&answers))
	defer x.Close()
	res, err := x.Run(old, []history.Event{started(1), completed(0, `1`)})
	if err != nil {
		t.Fatal(err)
	}
	if len(answers) != 1 || !answers[0] || len(res.Markers) != 1 || len(res.Actions) != 1 || res.Actions[0].Name != "extra" {
		t.Fatalf("answers %v, markers %v, actions %v: want the patch taken and recorded", answers, res.Markers, res.Actions)
	}
}

func TestUnguardedChangeFailsAnOlderHistory(t *testing.T) {
	x := New(unguardedOrch)
	defer x.Close()
	_, err := x.Run(beforePatch(), nil)
	var nd *NonDeterminismError
	if !errors.As(err, &nd) {
		t.Fatalf("err = %v, want non-determinism: the change has no guard", err)
	}
}

func TestRemovedPatchStillReplaysItsMarker(t *testing.T) {
	// A history written with the patch taken, replayed by the code after the patch's removal
	// (the new path kept, no IsPatched call): the marker nobody asks for is no divergence.
	hist := []history.Event{started(0), execStarted(`null`), scheduled(0, "a"),
		started(1), completed(0, `1`), patchMarker("extra"), scheduled(1, "extra"),
		started(2), completed(1, `2`), scheduled(2, "b")}
	x := New(unguardedOrch)
	defer x.Close()
	res, err := x.Run(hist, []history.Event{started(3), completed(2, `3`)})
	if err != nil {
		t.Fatalf("replay after the removal: %v", err)
	}
	if !res.Done || res.Status != store.StatusCompleted {
		t.Fatalf("result %+v, want completed", res)
	}
}

func TestIsPatchedMarkerIsFoundWhereverItIs(t *testing.T) {
	// The marker of an episode is written after the events that let the code reach the call;
	// replay must find it even though the call comes earlier in the replay. Here the call is
	// the orchestrator's first statement and the marker the episode's last event.
	var answers []bool
	fn := func(c *Context) ([]byte, error) {
		answers = append(answers, c.IsPatched("first"), c.IsPatched("second"))
		_, err := callNamed(c, "a").Await()
		return nil, err
	}
	hist := []history.Event{started(0), execStarted(`null`), patchMarker("first"), scheduled(0, "a")}
	x := New(fn)
	defer x.Close()
	res, err := x.Run(hist, nil)
	if err != nil {
		t.Fatal(err)
	}
	// "second" was reached while replaying, and the history has no marker for it: the
	// execution passed the point without it.
	if len(answers) != 2 || !answers[0] || answers[1] || len(res.Markers) != 0 {
		t.Fatalf("answers = %v, markers %v; want [true false] and nothing recorded", answers, res.Markers)
	}
}

func TestIsPatchedNamesAreExact(t *testing.T) {
	var answers []bool
	fn := func(c *Context) ([]byte, error) {
		answers = append(answers, c.IsPatched("Extra"), c.IsPatched("extra"))
		return nil, nil
	}
	x := New(fn)
	defer x.Close()
	if _, err := x.Run([]history.Event{started(0), execStarted(`null`), patchMarker("extra")}, nil); err != nil {
		t.Fatal(err)
	}
	if len(answers) != 2 || answers[0] || !answers[1] {
		t.Fatalf("answers = %v, want [false true]: names are compared exactly", answers)
	}
}

package replay

import (
	"testing"

	"github.com/reprise-dev/reprise/internal/history"
)

// TestVersionIsInherited: the context reports the version of the execution's start, on a fresh
// run and on a replay; sub-orchestrations and activity calls are scheduled with it unless the
// call names a version of its own; an execution started without one reports "".
func TestVersionIsInherited(t *testing.T) {
	var seen []string
	fn := func(c *Context) ([]byte, error) {
		seen = append(seen, c.Version())
		c.CallSubOrchestrator("child", "c1", "", nil, nil)
		c.CallSubOrchestrator("child", "c2", "3.0", nil, nil)
		c.CallActivity("a", "", nil, nil)
		return c.CallActivity("a", "act-7", nil, nil).Await()
	}
	start := execStarted(`null`)
	start.Version = "2.1"
	x := New(fn)
	res, err := x.Run(nil, []history.Event{started(0), start})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"2.1", "3.0", "2.1", "act-7"}
	if len(res.Actions) != len(want) {
		t.Fatalf("%d actions, want %d", len(res.Actions), len(want))
	}
	for i, a := range res.Actions {
		if a.Version != want[i] {
			t.Errorf("action %d (%s %s): version %q, want %q", i, a.Type, a.Name, a.Version, want[i])
		}
	}
	x.Close()

	// A replay (a cache miss, another host) sees the same version and schedules the same.
	past := append([]history.Event{started(0), start}, res.Actions...)
	y := New(fn)
	defer y.Close()
	if _, err := y.Run(past, []history.Event{started(1)}); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 2 || seen[0] != "2.1" || seen[1] != "2.1" {
		t.Errorf("Version() on the run and the replay: %q, want 2.1 twice", seen)
	}

	var plain string
	z := New(func(c *Context) ([]byte, error) { plain = c.Version(); return nil, nil })
	defer z.Close()
	if _, err := z.Run(nil, []history.Event{started(0), execStarted(`null`)}); err != nil {
		t.Fatal(err)
	}
	if plain != "" {
		t.Errorf("Version() of an execution started without one = %q", plain)
	}
}

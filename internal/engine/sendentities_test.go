package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/reprise-dev/reprise/internal/history"
	"github.com/reprise-dev/reprise/internal/replay"
	"github.com/reprise-dev/reprise/store"
)

// historyStore is a store that only has a history: what an episode of an instance with history
// reads. Any other call panics (the nil interface), which would show an episode doing more.
type historyStore struct {
	store.Store
	chunks [][]byte
	reads  int
}

func (s *historyStore) History(context.Context, string) ([][]byte, error) {
	s.reads++
	return s.chunks, nil
}

// entityRun drives the episodes of instance "i" as the dispatcher would, keeping its history in
// a historyStore.
type entityRun struct {
	t    *testing.T
	e    *Engine
	st   *historyStore
	inst store.Instance
	next int64 // message IDs
}

func newEntityRun(t *testing.T, reg staticRegistry, name string) *entityRun {
	st := &historyStore{}
	return &entityRun{t: t, e: New(Options{Registry: reg, Store: st}), st: st,
		inst: store.Instance{ID: "i", Name: name, ExecutionID: "x1", Status: store.StatusPending}}
}

// episode computes and "commits" an episode with the events as messages; with keep, its
// execution is cached as after a commit, else closed.
func (r *entityRun) episode(keep bool, events ...history.Event) (store.Episode, *replay.Result) {
	r.t.Helper()
	var msgs []store.Message
	for _, ev := range events {
		r.next++
		msgs = append(msgs, msg(r.t, r.next, "", ev))
	}
	w := store.OrchestrationWork{Instance: r.inst, Messages: msgs}
	ep, exec, res, err := r.e.episode(context.Background(), w, nil, new(func(error)), &episodeSpans{})
	if err != nil {
		r.t.Fatal(err)
	}
	if exec != nil {
		if keep && res != nil && !res.Done {
			r.e.cache.put(&cached{instanceID: "i", executionID: ep.Instance.ExecutionID, historyLen: r.inst.HistoryLen + len(ep.History), exec: exec})
		} else {
			exec.Close()
		}
	}
	if ep.ResetHistory {
		r.st.chunks = nil
	}
	r.st.chunks = append(r.st.chunks, ep.History...)
	r.inst = ep.Instance
	r.inst.HistoryLen = len(r.st.chunks)
	return ep, res
}

func (r *entityRun) start() history.Event {
	e := history.New(history.ExecutionStarted, time.Now().UTC())
	e.Name, e.InstanceID, e.ExecutionID, e.Input = r.inst.Name, "i", "x1", json.RawMessage(`null`)
	return e
}

// events returns the stored history.
func (r *entityRun) events() []history.Event {
	r.t.Helper()
	evs, err := history.DecodeAll(r.st.chunks)
	if err != nil {
		r.t.Fatal(err)
	}
	return evs
}

// entityMessages describes messages to entities, one a line: target, type, request ID (as
// ids names it), sender, and the fields the type uses.
func entityMessages(t *testing.T, ms []store.Message, ids map[string]string) string {
	t.Helper()
	var lines []string
	for _, m := range ms {
		ev, err := history.DecodeEvent(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		req := ids[ev.RequestID]
		if req == "" {
			req = "?" + ev.RequestID
		}
		line := fmt.Sprintf("%s %s %s from %s/%s", m.InstanceID, ev.Type, req, ev.Parent.InstanceID, ev.Parent.ExecutionID)
		if m.ExecutionID != "" {
			line += " exec " + m.ExecutionID
		}
		switch ev.Type {
		case history.EntityOperationSignaled, history.EntityOperationCalled:
			line += fmt.Sprintf(" %q %s", ev.Name, ev.Input)
		case history.EntityLockRequested:
			line += fmt.Sprintf(" %v@%d", ev.LockSet, ev.Position)
		}
		if !ev.FireAt.IsZero() || !m.VisibleAt.IsZero() {
			line += fmt.Sprintf(" fireAt %s visibleAt %s", ev.FireAt.Format(time.RFC3339), m.VisibleAt.Format(time.RFC3339))
		}
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n")
}

// requestNames names the request IDs of the entity actions in events: "call1", "signal1",
// "lock1", ... in order.
func requestNames(events []history.Event) map[string]string {
	names := map[string]string{}
	n := map[history.Type]int{}
	for _, e := range events {
		var kind string
		switch e.Type {
		case history.EntityOperationSignaled:
			kind = "signal"
		case history.EntityOperationCalled:
			kind = "call"
		case history.EntityLockRequested:
			kind = "lock"
		default:
			continue
		}
		if _, ok := names[e.RequestID]; !ok {
			n[e.Type]++
			names[e.RequestID] = fmt.Sprintf("%s%d", kind, n[e.Type])
		}
	}
	return names
}

var fireAt = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func TestEpisodeEntityMessages(t *testing.T) {
	reg := staticRegistry{
		"sends": func(c *replay.Context) ([]byte, error) {
			if err := c.SignalEntity("@log@x", "note", []byte(`1`), time.Time{}); err != nil {
				return nil, err
			}
			if err := c.SignalEntity("@log@x", "later", nil, fireAt); err != nil {
				return nil, err
			}
			call := c.CallEntity("@counter@a", "add", []byte(`5`))
			lock, err := c.LockEntities([]string{"@b@1", "@a@1"})
			if err != nil {
				return nil, err
			}
			if _, err := c.All(call, lock).Await(); err != nil {
				return nil, err
			}
			c.ReleaseLocks()
			return call.Await()
		},
	}
	r := newEntityRun(t, reg, "sends")
	ep, res := r.episode(true, r.start())
	if res == nil || res.Done {
		t.Fatalf("first episode: %+v", res)
	}
	ids := requestNames(r.events())
	want := `@log@x EntityOperationSignaled signal1 from i/x1 "note" 1
@log@x EntityOperationSignaled signal2 from i/x1 "later"  fireAt 2030-01-02T03:04:05Z visibleAt 2030-01-02T03:04:05Z
@counter@a EntityOperationCalled call1 from i/x1 "add" 5
@a@1 EntityLockRequested lock1 from i/x1 [@a@1 @b@1]@0`
	if got := entityMessages(t, ep.EntityMessages, ids); got != want {
		t.Errorf("entity messages of the first episode:\n%s\nwant\n%s", got, want)
	}
	if len(ep.Messages) != 0 || len(ep.Tasks) != 0 || len(ep.Starts) != 0 {
		t.Errorf("entity actions became other work: %+v", ep)
	}

	// The reply and the grant, then the release and the end.
	var callID, lockID string
	for id, name := range ids {
		switch name {
		case "call1":
			callID = id
		case "lock1":
			lockID = id
		}
	}
	reply := history.New(history.EntityOperationCompleted, time.Now().UTC())
	reply.RequestID, reply.Result = callID, json.RawMessage(`6`)
	grant := history.New(history.EntityLockGranted, time.Now().UTC())
	grant.RequestID = lockID
	ep, res = r.episode(true, reply, grant)
	if res == nil || !res.Done || string(res.Output) != `6` {
		t.Fatalf("last episode: %+v", res)
	}
	want = `@a@1 EntityUnlockSent lock1 from i/x1
@b@1 EntityUnlockSent lock1 from i/x1`
	if got := entityMessages(t, ep.EntityMessages, ids); got != want {
		t.Errorf("entity messages of the last episode (the release only: no unlocks of a released section at the end):\n%s\nwant\n%s", got, want)
	}
	if r.st.reads != 1 {
		t.Errorf("%d history reads; want 1 (the cached execution requested locks, so its end reads the history)", r.st.reads)
	}
}

// locksThen returns an orchestrator that requests locks on @a@1 and @b@1 and then, without
// waiting for the grant or releasing them, ends as end says.
func locksThen(end func(c *replay.Context) ([]byte, error)) replay.Func {
	return func(c *replay.Context) ([]byte, error) {
		if _, err := c.LockEntities([]string{"@b@1", "@a@1"}); err != nil {
			return nil, err
		}
		return end(c)
	}
}

func locksAndWaits(c *replay.Context) ([]byte, error) {
	lock, err := c.LockEntities([]string{"@b@1", "@a@1"})
	if err != nil {
		return nil, err
	}
	if _, err := lock.Await(); err != nil {
		return nil, err
	}
	return c.CallEntity("@a@1", "get", nil).Await()
}

// Whichever way an execution ends, the locks it holds are released: an unlock to every entity
// of each open section, from the ending execution.
func TestEpisodeEndReleasesLocks(t *testing.T) {
	unlocks := `@a@1 EntityUnlockSent lock1 from i/x1
@b@1 EntityUnlockSent lock1 from i/x1`
	requestAndUnlocks := "@a@1 EntityLockRequested lock1 from i/x1 [@a@1 @b@1]@0\n" + unlocks
	reg := staticRegistry{
		"completes": locksThen(func(*replay.Context) ([]byte, error) { return []byte(`"ok"`), nil }),
		"fails":     locksThen(func(*replay.Context) ([]byte, error) { return nil, errors.New("no luck") }),
		"continues": locksThen(func(c *replay.Context) ([]byte, error) { c.ContinueAsNew([]byte(`2`), false); return nil, nil }),
		"waits":     locksAndWaits,
		// What "waits" became in a deployment that changed it: it calls an activity instead.
		"changed": func(c *replay.Context) ([]byte, error) { return c.CallActivity("a", "", nil, nil).Await() },
	}
	for _, tc := range []struct {
		name   string
		status store.Status
	}{
		{"completes", store.StatusCompleted},
		{"fails", store.StatusFailed},
		{"continues", store.StatusContinuedAsNew},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newEntityRun(t, reg, tc.name)
			ep, _ := r.episode(false, r.start())
			if ep.Instance.Status != tc.status {
				t.Fatalf("status %s, want %s", ep.Instance.Status, tc.status)
			}
			// continue-as-new clears the history: name the request from the message itself.
			ids := requestNames(append(r.events(), decodeAll(t, ep.EntityMessages)...))
			if got := entityMessages(t, ep.EntityMessages, ids); got != requestAndUnlocks {
				t.Errorf("entity messages:\n%s\nwant\n%s", got, requestAndUnlocks)
			}
		})
	}
	for _, cachedExec := range []bool{false, true} {
		t.Run(fmt.Sprintf("terminated (cached execution %v)", cachedExec), func(t *testing.T) {
			r := newEntityRun(t, reg, "waits")
			r.episode(cachedExec, r.start())
			ids := requestNames(r.events())
			ep, res := r.episode(false, history.New(history.ExecutionTerminated, time.Now().UTC()))
			if res == nil || ep.Instance.Status != store.StatusTerminated {
				t.Fatalf("status %s, want Terminated", ep.Instance.Status)
			}
			if got := entityMessages(t, ep.EntityMessages, ids); got != unlocks {
				t.Errorf("entity messages:\n%s\nwant\n%s", got, unlocks)
			}
		})
	}
	t.Run("non-deterministic", func(t *testing.T) {
		r := newEntityRun(t, reg, "waits")
		r.episode(false, r.start())
		ids := requestNames(r.events())
		r.inst.Name = "changed"
		ep, _ := r.episode(false, raisedEvent("poke"))
		if ep.Instance.Status != store.StatusFailed || !strings.Contains(string(ep.Instance.Failure), "NonDeterminismError") {
			t.Fatalf("status %s, failure %s; want a non-determinism failure", ep.Instance.Status, ep.Instance.Failure)
		}
		if got := entityMessages(t, ep.EntityMessages, ids); got != unlocks {
			t.Errorf("entity messages:\n%s\nwant\n%s", got, unlocks)
		}
	})
	t.Run("released before the end", func(t *testing.T) {
		r := newEntityRun(t, staticRegistry{"releases": locksThen(func(c *replay.Context) ([]byte, error) {
			c.ReleaseLocks()
			return nil, nil
		})}, "releases")
		ep, _ := r.episode(false, r.start())
		ids := requestNames(r.events())
		if got := entityMessages(t, ep.EntityMessages, ids); got != requestAndUnlocks {
			t.Errorf("entity messages (its own release, and nothing more at the end):\n%s\nwant\n%s", got, requestAndUnlocks)
		}
	})
}

func decodeAll(t *testing.T, ms []store.Message) []history.Event {
	t.Helper()
	var evs []history.Event
	for _, m := range ms {
		ev, err := history.DecodeEvent(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	return evs
}

// An entity message to an ID that is not an entity's fails the orchestration instead of a commit
// that the store would refuse for ever; the locks it holds are released.
func TestEpisodeInvalidEntityID(t *testing.T) {
	reg := staticRegistry{
		"bad": func(c *replay.Context) ([]byte, error) {
			lock, err := c.LockEntities([]string{"@a@1"})
			if err != nil {
				return nil, err
			}
			if _, err := lock.Await(); err != nil {
				return nil, err
			}
			a := c.CallActivity("a", "", nil, nil)
			if err := c.SignalEntity("@Counter@a", "add", nil, time.Time{}); err != nil { // a name in upper case
				return nil, err
			}
			return a.Await()
		},
	}
	r := newEntityRun(t, reg, "bad")
	r.episode(false, r.start())
	ids := requestNames(r.events())
	var lockID string
	for id := range ids {
		lockID = id
	}
	grant := history.New(history.EntityLockGranted, time.Now().UTC())
	grant.RequestID = lockID
	ep, _ := r.episode(false, grant)
	if ep.Instance.Status != store.StatusFailed {
		t.Fatalf("status %s, want Failed", ep.Instance.Status)
	}
	f := history.DecodeFailure(ep.Instance.Failure)
	if f.Type != "InvalidEntityID" || !strings.Contains(f.Message, `"@Counter@a"`) || !strings.Contains(f.Message, "upper-case") {
		t.Errorf("failure %+v", f)
	}
	// This episode's actions (the activity, the bad call) are dropped; the section of @a@1 is
	// open, and released at the end.
	want := "@a@1 EntityUnlockSent lock1 from i/x1"
	if got := entityMessages(t, ep.EntityMessages, ids); got != want {
		t.Errorf("entity messages:\n%s\nwant\n%s", got, want)
	}
	if len(ep.Tasks) != 0 {
		t.Errorf("%d tasks: the failed episode's actions were sent", len(ep.Tasks))
	}
	var types []string
	for _, ev := range r.events() {
		types = append(types, ev.Type.String())
	}
	if got, want := strings.Join(types, " "), "OrchestratorStarted ExecutionStarted EntityLockRequested OrchestratorStarted EntityLockGranted ExecutionCompleted"; got != want {
		t.Errorf("history %s\nwant %s", got, want)
	}
}

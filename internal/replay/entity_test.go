package replay

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/reprise-dev/reprise/internal/history"
	"github.com/reprise-dev/reprise/store"
)

// entityWorld answers an orchestration's entity traffic as the engine and the entities would:
// a call is answered (failed for the operations in fail), a lock request granted.
type entityWorld struct {
	fail map[string]string // operation → failure message
}

func (w entityWorld) answer(actions []history.Event) []history.Event {
	var out []history.Event
	for _, a := range actions {
		switch a.Type {
		case history.EntityOperationCalled:
			if msg, ok := w.fail[a.Name]; ok {
				e := history.New(history.EntityOperationFailed, t0)
				e.RequestID, e.Failure = a.RequestID, &history.Failure{Type: "E", Message: msg}
				out = append(out, e)
				continue
			}
			e := history.New(history.EntityOperationCompleted, t0)
			e.RequestID, e.Result = a.RequestID, json.RawMessage(`"`+a.Name+` on `+a.InstanceID+`"`)
			out = append(out, e)
		case history.EntityLockRequested:
			e := history.New(history.EntityLockGranted, t0)
			e.RequestID = a.RequestID
			out = append(out, e)
		}
	}
	return out
}

// runEpisodes runs fn episode by episode, each time from a new execution that replays the
// history so far (so every episode checks the determinism of the ones before), answering its
// entity traffic, until it finishes or waits for nothing the world answers. It returns the
// history as the engine would have written it and the last result.
func runEpisodes(t *testing.T, fn Func, w entityWorld) ([]history.Event, *Result) {
	t.Helper()
	var hist []history.Event
	next := []history.Event{started(0), execStarted(`null`)}
	for i := 1; ; i++ {
		x := New(fn)
		res, err := x.Run(hist, next)
		if cerr := x.Close(); cerr != nil {
			t.Fatalf("episode %d: close: %v", i, cerr)
		}
		if err != nil {
			t.Fatalf("episode %d: %v", i, err)
		}
		hist = append(append(hist, next...), res.Actions...)
		if res.Done {
			hist = append(hist, finished(res.Status))
			return hist, res
		}
		replies := w.answer(res.Actions)
		if len(replies) == 0 {
			return hist, res
		}
		next = append([]history.Event{started(i)}, replies...)
	}
}

// replayAll replays a whole history from a new execution: it must match the code.
func replayAll(t *testing.T, fn Func, hist []history.Event) {
	t.Helper()
	x := New(fn)
	defer x.Close()
	if _, err := x.Run(hist, nil); err != nil {
		t.Fatalf("replaying the history it wrote: %v", err)
	}
}

func ofType(events []history.Event, typ history.Type) []history.Event {
	var out []history.Event
	for _, e := range events {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

func callsCounter(c *Context) ([]byte, error) {
	out, err := c.CallEntity("@counter@a", "add", []byte(`5`)).Await()
	if err != nil {
		return nil, err
	}
	if err := c.SignalEntity("@log@x", "note", out, time.Time{}); err != nil {
		return nil, err
	}
	if err := c.SignalEntity("@log@x", "later", nil, t0.Add(time.Hour)); err != nil {
		return nil, err
	}
	return out, nil
}

func TestCallEntityReplays(t *testing.T) {
	hist, res := runEpisodes(t, callsCounter, entityWorld{})
	if res.Status != store.StatusCompleted || string(res.Output) != `"add on @counter@a"` {
		t.Fatalf("result %+v (output %s)", res, res.Output)
	}
	calls := ofType(hist, history.EntityOperationCalled)
	if len(calls) != 1 || calls[0].ID != 0 || calls[0].RequestID == "" || calls[0].InstanceID != "@counter@a" ||
		calls[0].Name != "add" || string(calls[0].Input) != `5` {
		t.Fatalf("calls %+v", calls)
	}
	signals := ofType(hist, history.EntityOperationSignaled)
	if len(signals) != 2 || signals[0].InstanceID != "@log@x" || signals[0].Name != "note" ||
		string(signals[0].Input) != `"add on @counter@a"` || !signals[0].FireAt.IsZero() ||
		!signals[1].FireAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("signals %+v", signals)
	}
	if signals[0].RequestID == "" || signals[0].RequestID == signals[1].RequestID || signals[0].RequestID == calls[0].RequestID {
		t.Errorf("request IDs not distinct: call %q, signals %q %q", calls[0].RequestID, signals[0].RequestID, signals[1].RequestID)
	}
	if got := describe(calls[0]); got != `CallEntity #0 "add" on "@counter@a"` {
		t.Errorf("describe = %s", got)
	}
	replayAll(t, callsCounter, hist)
}

// A reply for a request nobody waits on (stale, or a duplicate) changes nothing.
func TestEntityReplyStaleOrDuplicate(t *testing.T) {
	x := New(callsCounter)
	defer x.Close()
	first, err := x.Run(nil, []history.Event{started(0), execStarted(`null`)})
	if err != nil || len(first.Actions) != 1 {
		t.Fatalf("first episode: %+v, %v", first, err)
	}
	stale := history.New(history.EntityOperationCompleted, t0)
	stale.RequestID, stale.Result = "not-a-request", json.RawMessage(`"stale"`)
	res, err := x.Run(nil, []history.Event{started(1), stale})
	if err != nil || res.Done || len(res.Actions) != 0 {
		t.Fatalf("after a stale reply: %+v, %v", res, err)
	}
	reply := entityWorld{}.answer(first.Actions)[0]
	dup := reply
	dup.Result = json.RawMessage(`"duplicate"`)
	res, err = x.Run(nil, []history.Event{started(2), reply, dup})
	if err != nil || !res.Done || string(res.Output) != `"add on @counter@a"` {
		t.Fatalf("after the reply and its duplicate: %+v (output %s), %v", res, res.Output, err)
	}
}

func TestCallEntityFails(t *testing.T) {
	var got error
	fn := func(c *Context) ([]byte, error) {
		_, got = c.CallEntity("@counter@a", "explode", nil).Await()
		return nil, got
	}
	hist, res := runEpisodes(t, fn, entityWorld{fail: map[string]string{"explode": "negative"}})
	var fe *FailedError
	if !errors.As(got, &fe) || fe.Kind != "entity" || fe.Name != "explode" || fe.Entity != "@counter@a" ||
		fe.TaskID != 0 || fe.Failure == nil || fe.Failure.Message != "negative" {
		t.Fatalf("error %#v", got)
	}
	if want := `operation "explode" of entity "@counter@a" (task 0) failed: E: negative`; got.Error() != want {
		t.Errorf("error text %q, want %q", got.Error(), want)
	}
	if res.Status != store.StatusFailed || res.Failure == nil || res.Failure.Inner == nil || res.Failure.Inner.Message != "negative" {
		t.Errorf("result %+v", res)
	}
	replayAll(t, fn, hist)
}

// locksAndCalls exercises a critical section; rules collects what each rule check returned.
func locksAndCalls(rules *[]string) Func {
	note := func(what string, err error) {
		if rules != nil && !errors.Is(err, ErrCriticalSection) {
			*rules = append(*rules, what+": "+errString(err))
		}
	}
	return func(c *Context) ([]byte, error) {
		lock, err := c.LockEntities([]string{"@b@1", "@a@1", "@a@1"})
		if err != nil {
			return nil, err
		}
		if set, ok := c.InCriticalSection(); !ok || !reflect.DeepEqual(set, []string{"@a@1", "@b@1"}) {
			return nil, errors.New("not in the section of [@a@1 @b@1] after the request")
		}
		if _, err := lock.Await(); err != nil {
			return nil, err
		}
		_, err = c.LockEntities([]string{"@c@1"})
		note("nested lock", err)
		note("signal to a locked entity", c.SignalEntity("@a@1", "poke", nil, time.Time{}))
		if err := c.SignalEntity("@c@1", "poke", nil, time.Time{}); err != nil {
			return nil, err
		}
		_, err = c.CallEntity("@c@1", "get", nil).Await()
		note("call outside the lock set", err)
		_, err = c.CallSubOrchestrator("child", "", "", nil, nil).Await()
		note("sub-orchestration", err)
		first := c.CallEntity("@a@1", "get", nil)
		_, err = c.CallEntity("@a@1", "get", nil).Await()
		note("second call while one is outstanding", err)
		second := c.CallEntity("@b@1", "get", nil)
		if _, err := c.All(first, second).Await(); err != nil {
			return nil, err
		}
		again, err := c.CallEntity("@a@1", "set", nil).Await() // the first has returned
		if err != nil {
			return nil, err
		}
		c.ReleaseLocks()
		if _, ok := c.InCriticalSection(); ok {
			return nil, errors.New("still in a critical section after ReleaseLocks")
		}
		c.ReleaseLocks() // outside a section: nothing
		if err := c.SignalEntity("@a@1", "poke", nil, time.Time{}); err != nil {
			return nil, err
		}
		return again, nil
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

func TestCriticalSection(t *testing.T) {
	var broken []string
	hist, res := runEpisodes(t, locksAndCalls(&broken), entityWorld{})
	if len(broken) > 0 {
		t.Errorf("rules not enforced (want ErrCriticalSection):\n%s", strings.Join(broken, "\n"))
	}
	if res.Status != store.StatusCompleted || string(res.Output) != `"set on @a@1"` {
		t.Fatalf("result %+v (output %s, failure %v)", res, res.Output, res.Failure)
	}
	reqs := ofType(hist, history.EntityLockRequested)
	if len(reqs) != 1 {
		t.Fatalf("lock requests %+v", reqs)
	}
	r := reqs[0]
	if r.ID != 0 || r.RequestID == "" || !reflect.DeepEqual(r.LockSet, []string{"@a@1", "@b@1"}) || r.Position != 0 || r.InstanceID != "@a@1" {
		t.Errorf("lock request %+v", r)
	}
	unlocks := ofType(hist, history.EntityUnlockSent)
	if len(unlocks) != 2 || unlocks[0].InstanceID != "@a@1" || unlocks[1].InstanceID != "@b@1" ||
		unlocks[0].RequestID != r.RequestID || unlocks[1].RequestID != r.RequestID {
		t.Errorf("unlocks %+v", unlocks)
	}
	if got := describeAll(ofType(hist, history.EntityOperationSignaled)); got != `SignalEntity #1 "poke" on "@c@1", SignalEntity #7 "poke" on "@a@1"` {
		t.Errorf("signals: %s", got)
	}
	if got := describeAll(ofType(hist, history.EntityOperationCalled)); got != `CallEntity #2 "get" on "@a@1", CallEntity #3 "get" on "@b@1", CallEntity #4 "set" on "@a@1"` {
		t.Errorf("calls: %s", got)
	}
	if locks := history.OpenLocks(hist); locks != nil {
		t.Errorf("OpenLocks after the release = %v", locks)
	}
	replayAll(t, locksAndCalls(nil), hist)
}

// Until the grant, the orchestration waits in its section; the history says the section is open.
func TestLockGrantAwaited(t *testing.T) {
	x := New(locksAndCalls(nil))
	defer x.Close()
	res, err := x.Run(nil, []history.Event{started(0), execStarted(`null`)})
	if err != nil || res.Done || describeAll(res.Actions) != `LockEntities #0 ["@a@1" "@b@1"]` {
		t.Fatalf("first episode: %+v, %v", res, err)
	}
	if set, ok := x.Context().InCriticalSection(); !ok || len(set) != 2 || !x.Context().RequestedLocks() {
		t.Errorf("InCriticalSection = %v, %v; RequestedLocks = %v", set, ok, x.Context().RequestedLocks())
	}
	want := []history.Lock{{Section: res.Actions[0].RequestID, Entities: []string{"@a@1", "@b@1"}}}
	if got := history.OpenLocks(res.Actions); !reflect.DeepEqual(got, want) {
		t.Errorf("OpenLocks = %v, want %v", got, want)
	}
	wrong := history.New(history.EntityLockGranted, t0)
	wrong.RequestID = "another-section"
	res, err = x.Run(nil, []history.Event{started(1), wrong})
	if err != nil || len(res.Actions) != 0 {
		t.Fatalf("a grant for another section moved it on: %+v, %v", res, err)
	}
	if _, err = x.Run(nil, append([]history.Event{started(2)}, entityWorld{}.answer(res.Actions)...)); err != nil {
		t.Fatal(err)
	}
	grant := history.New(history.EntityLockGranted, t0)
	grant.RequestID = want[0].Section
	res, err = x.Run(nil, []history.Event{started(3), grant})
	if err != nil || describeAll(res.Actions) != `SignalEntity #1 "poke" on "@c@1", CallEntity #2 "get" on "@a@1", CallEntity #3 "get" on "@b@1"` {
		t.Fatalf("after the grant: %s, %v", describeAll(res.Actions), err)
	}
}

func TestLockEntitiesRefused(t *testing.T) {
	var errs []error
	var releasedEarly error
	fn := func(c *Context) ([]byte, error) {
		_, err := c.LockEntities(nil)
		errs = append(errs, err)
		lock, err := c.LockEntities([]string{"@a@1"})
		if err != nil {
			return nil, err
		}
		c.ReleaseLocks()
		_, releasedEarly = lock.Await()
		return nil, nil
	}
	x := New(fn)
	defer x.Close()
	res, err := x.Run(nil, []history.Event{started(0), execStarted(`null`)})
	if err != nil || !res.Done {
		t.Fatalf("%+v, %v", res, err)
	}
	if len(errs) != 1 || errs[0] == nil {
		t.Errorf("LockEntities(nil) = %v, want an error", errs)
	}
	if !errors.Is(releasedEarly, ErrLocksReleased) {
		t.Errorf("lock released before its grant: %v, want ErrLocksReleased", releasedEarly)
	}
	if got := describeAll(res.Actions); got != `LockEntities #0 ["@a@1"], ReleaseLocks #1 on "@a@1"` {
		t.Errorf("actions %s", got)
	}
}

// Replies and grants wait while the orchestration is suspended.
func TestEntityRepliesHeldWhileSuspended(t *testing.T) {
	x := New(callsCounter)
	defer x.Close()
	first, err := x.Run(nil, []history.Event{started(0), execStarted(`null`)})
	if err != nil {
		t.Fatal(err)
	}
	reply := entityWorld{}.answer(first.Actions)
	res, err := x.Run(nil, append([]history.Event{started(1), control(history.ExecutionSuspended, "")}, reply...))
	if err != nil || res.Done || res.Status != store.StatusSuspended {
		t.Fatalf("suspended: %+v, %v", res, err)
	}
	res, err = x.Run(nil, []history.Event{started(2), control(history.ExecutionResumed, "")})
	if err != nil || !res.Done || string(res.Output) != `"add on @counter@a"` {
		t.Fatalf("resumed: %+v, %v", res, err)
	}
}

func TestEntityNonDeterminism(t *testing.T) {
	hist, _ := runEpisodes(t, callsCounter, entityWorld{})
	call := func(target, op string) Func {
		return func(c *Context) ([]byte, error) { return c.CallEntity(target, op, []byte(`5`)).Await() }
	}
	lock := func(set ...string) Func {
		return func(c *Context) ([]byte, error) {
			t, err := c.LockEntities(set)
			if err != nil {
				return nil, err
			}
			return t.Await()
		}
	}
	lockHist, _ := runEpisodes(t, lock("@a@1", "@b@1"), entityWorld{})
	for _, tc := range []struct {
		name string
		fn   Func
		hist []history.Event
		want string
	}{
		{"another operation", call("@counter@a", "subtract"), hist,
			`history has CallEntity #0 "add" on "@counter@a", but the code scheduled CallEntity #0 "subtract" on "@counter@a"`},
		{"another entity", call("@counter@b", "add"), hist,
			`history has CallEntity #0 "add" on "@counter@a", but the code scheduled CallEntity #0 "add" on "@counter@b"`},
		{"a signal for a call", func(c *Context) ([]byte, error) {
			return nil, c.SignalEntity("@counter@a", "add", nil, time.Time{})
		}, hist, `history has CallEntity #0 "add" on "@counter@a", but the code scheduled SignalEntity #0 "add" on "@counter@a"`},
		{"another lock set", lock("@a@1", "@c@1"), lockHist,
			`history has LockEntities #0 ["@a@1" "@b@1"], but the code scheduled LockEntities #0 ["@a@1" "@c@1"]`},
		{"another request ID", func(c *Context) ([]byte, error) {
			c.NewUUID()
			return call("@counter@a", "add")(c)
		}, hist, `the NewUUID calls before it changed`},
	} {
		x := New(tc.fn)
		_, err := x.Run(tc.hist, nil)
		x.Close()
		var nd *NonDeterminismError
		if !errors.As(err, &nd) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want non-determinism with %q", tc.name, err, tc.want)
		}
	}
}

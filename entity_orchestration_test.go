package reprise

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/reprise-dev/reprise/internal/history"
	"github.com/reprise-dev/reprise/internal/replay"
	"github.com/reprise-dev/reprise/store"
)

func TestEntityID(t *testing.T) {
	id := EntityID{Name: "Counter", Key: "Key@1"}
	if got := id.String(); got != "@counter@Key@1" {
		t.Errorf("String() = %q", got)
	}
	back, err := ParseEntityID(id.String())
	if err != nil || back != (EntityID{Name: "counter", Key: "Key@1"}) {
		t.Errorf("ParseEntityID(%q) = %+v, %v", id.String(), back, err)
	}
	if back, err := ParseEntityID("@counter@"); err != nil || back != (EntityID{Name: "counter"}) {
		t.Errorf("an empty key: %+v, %v", back, err)
	}
	for _, bad := range []string{"counter", "@counter", "@@key", "", "@count\x00er@k", "@counter@k\x00", "@counter@\xff"} {
		_, err := ParseEntityID(bad)
		if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), fmt.Sprintf("%q", bad)) {
			t.Errorf("ParseEntityID(%q) = %v, want ErrInvalidArgument naming the ID", bad, err)
		}
	}
	for _, bad := range []EntityID{{}, {Name: "a@b", Key: "k"}, {Name: "a", Key: "k\x00"}, {Name: "a\xff"},
		{Name: "a", Key: strings.Repeat("k", store.MaxKeyBytes)}} {
		if err := bad.check(); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%+v: check() = %v, want ErrInvalidArgument", bad, err)
		}
	}
}

// orchestrate runs a definition episode by episode, as the engine would, answering its entity
// traffic with answer, until it finishes or is answered nothing; it returns the history.
func orchestrate(t *testing.T, def Definition, answer func(history.Event) []history.Event) ([]history.Event, *replay.Result) {
	t.Helper()
	a := NewApp()
	a.logger = slog.New(slog.DiscardHandler)
	a.Register(def)
	var fn replay.Func
	for _, f := range a.reg.orchestrators {
		fn = f
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	start := history.New(history.ExecutionStarted, now)
	start.Name, start.InstanceID, start.ExecutionID, start.Input = "o", "i", "x", json.RawMessage(`null`)
	var hist []history.Event
	next := []history.Event{history.New(history.OrchestratorStarted, now), start}
	for i := 1; ; i++ {
		x := replay.New(fn)
		res, err := x.Run(hist, next)
		x.Close()
		if err != nil {
			t.Fatalf("episode %d: %v", i, err)
		}
		hist = append(append(hist, next...), res.Actions...)
		var replies []history.Event
		for _, a := range res.Actions {
			replies = append(replies, answer(a)...)
		}
		if res.Done || len(replies) == 0 {
			data, err := json.Marshal(hist)
			if err != nil {
				t.Fatal(err)
			}
			if err := ReplayHistory(def, data); err != nil {
				t.Errorf("ReplayHistory of the history it wrote: %v", err)
			}
			return hist, res
		}
		next = append([]history.Event{history.New(history.OrchestratorStarted, now.Add(time.Duration(i)*time.Second))}, replies...)
	}
}

// counters answers calls with the operation's input plus one ("add") or a failure ("fail"), and
// grants locks.
func counters(a history.Event) []history.Event {
	switch a.Type {
	case history.EntityOperationCalled:
		if a.Name == "fail" {
			e := history.New(history.EntityOperationFailed, a.Time)
			e.RequestID, e.Failure = a.RequestID, &history.Failure{Type: "Overflow", Message: "too big"}
			return []history.Event{e}
		}
		var n int
		_ = json.Unmarshal(a.Input, &n)
		out, _ := json.Marshal(n + 1)
		e := history.New(history.EntityOperationCompleted, a.Time)
		e.RequestID, e.Result = a.RequestID, out
		return []history.Event{e}
	case history.EntityLockRequested:
		e := history.New(history.EntityLockGranted, a.Time)
		e.RequestID = a.RequestID
		return []history.Event{e}
	}
	return nil
}

func TestOrchestrationCallsAndSignalsEntities(t *testing.T) {
	later := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	var callErr, badInput, withOption error
	def := NewOrchestrator("o", func(ctx *OrchestrationContext, _ None) (int, error) {
		counter := EntityID{Name: "Counter", Key: "a"}
		n, err := CallEntity[int](ctx, counter, "add", 41).Await()
		if err != nil {
			return 0, err
		}
		_, callErr = CallEntity[int](ctx, counter, "fail", nil).Await()
		_, badInput = CallEntity[int](ctx, counter, "add", make(chan int)).Await()
		_, withOption = CallEntity[int](ctx, counter, "add", 1, WithRetry(RetryPolicy{MaxAttempts: 2})).Await()
		if err := ctx.SignalEntity(EntityID{Name: "log", Key: "x"}, "note", n); err != nil {
			return 0, err
		}
		if err := ctx.SignalEntity(EntityID{Name: "log", Key: "x"}, "later", nil, WithSignalTime(later)); err != nil {
			return 0, err
		}
		if err := ctx.SignalEntity(EntityID{Name: "log@x"}, "note", nil); !errors.Is(err, ErrInvalidArgument) {
			return 0, errors.New("a signal to a bad entity ID was not refused")
		}
		return n, nil
	})
	hist, res := orchestrate(t, def, counters)
	if res.Status != store.StatusCompleted || string(res.Output) != `42` {
		t.Fatalf("result %+v (output %s, failure %v)", res, res.Output, res.Failure)
	}
	var te *TaskFailedError
	if !errors.As(callErr, &te) || te.Kind != "entity" || te.Name != "fail" || te.Entity != (EntityID{Name: "counter", Key: "a"}) ||
		te.Failure == nil || te.Failure.Type != "Overflow" || te.Failure.Message != "too big" {
		t.Errorf("failed call: %#v", callErr)
	} else if want := `operation "fail" of entity "@counter@a" (task 1) failed: Overflow: too big`; te.Error() != want {
		t.Errorf("failed call: %q, want %q", te.Error(), want)
	}
	if !errors.Is(badInput, ErrInvalidArgument) || !strings.Contains(badInput.Error(), "JSON") {
		t.Errorf("a call with an input that is not JSON: %v", badInput)
	}
	if !errors.Is(withOption, ErrInvalidArgument) {
		t.Errorf("a call with a CallOption: %v", withOption)
	}
	var got []string
	for _, e := range hist {
		switch e.Type {
		case history.EntityOperationCalled, history.EntityOperationSignaled:
			s := e.Type.String() + " " + e.InstanceID + " " + e.Name + " " + string(e.Input)
			if !e.FireAt.IsZero() {
				s += " at " + e.FireAt.Format(time.RFC3339)
			}
			got = append(got, s)
		}
	}
	want := []string{
		"EntityOperationCalled @counter@a add 41",
		"EntityOperationCalled @counter@a fail null",
		"EntityOperationSignaled @log@x note 42",
		"EntityOperationSignaled @log@x later null at 2030-01-01T00:00:00Z",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("entity actions:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestOrchestrationCriticalSection(t *testing.T) {
	a, b, c := EntityID{Name: "account", Key: "b"}, EntityID{Name: "account", Key: "a"}, EntityID{Name: "log", Key: "x"}
	var rules []string
	check := func(what string, err error) {
		if !errors.Is(err, ErrCriticalSection) {
			rules = append(rules, fmt.Sprintf("%s: %v", what, err))
		}
	}
	var entities, inside []EntityID
	var outside bool
	def := NewOrchestrator("o", func(ctx *OrchestrationContext, _ None) (int, error) {
		if _, err := ctx.LockEntities(); err == nil {
			return 0, errors.New("LockEntities() with no entity did not fail")
		}
		if _, err := ctx.LockEntities(EntityID{Name: "bad@name"}); !errors.Is(err, ErrInvalidArgument) {
			return 0, errors.New("LockEntities of a bad ID did not fail with ErrInvalidArgument")
		}
		section, err := ctx.LockEntities(a, b, a)
		if err != nil {
			return 0, err
		}
		entities = section.Entities()
		inside, _ = ctx.InCriticalSection()
		_, err = ctx.LockEntities(c)
		check("nested lock", err)
		check("signal to a locked entity", ctx.SignalEntity(a, "add", 1))
		_, err = CallEntity[int](ctx, c, "add", 1).Await()
		check("call outside the section", err)
		_, err = CallSubOrchestrator[int](ctx, "child", nil).Await()
		check("sub-orchestration", err)
		if err := ctx.SignalEntity(c, "note", "in the section"); err != nil {
			return 0, err
		}
		x, err := CallEntity[int](ctx, a, "add", 1).Await()
		if err != nil {
			return 0, err
		}
		y, err := CallEntity[int](ctx, b, "add", x).Await()
		if err != nil {
			return 0, err
		}
		section.Release()
		section.Release()
		_, outside = ctx.InCriticalSection()
		outside = !outside
		return y, nil
	})
	hist, res := orchestrate(t, def, counters)
	if res.Status != store.StatusCompleted || string(res.Output) != `3` {
		t.Fatalf("result %+v (output %s, failure %v)", res, res.Output, res.Failure)
	}
	if len(rules) > 0 {
		t.Errorf("rules not enforced (want ErrCriticalSection):\n%s", strings.Join(rules, "\n"))
	}
	sorted := []EntityID{{Name: "account", Key: "a"}, {Name: "account", Key: "b"}}
	if !reflect.DeepEqual(entities, sorted) || !reflect.DeepEqual(inside, sorted) || !outside {
		t.Errorf("Entities() = %v, InCriticalSection() = %v in it, left it: %v", entities, inside, outside)
	}
	var unlocks []string
	for _, e := range hist {
		if e.Type == history.EntityUnlockSent {
			unlocks = append(unlocks, e.InstanceID)
		}
	}
	if !reflect.DeepEqual(unlocks, []string{"@account@a", "@account@b"}) {
		t.Errorf("unlocks %v: Release twice must release once", unlocks)
	}
	if locks := history.OpenLocks(hist); locks != nil {
		t.Errorf("open locks at the end: %v", locks)
	}
}

package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/reprise-dev/reprise"
	"github.com/reprise-dev/reprise/internal/hosttest"
)

const masterKey = "masterkey"

var (
	// cliCounter adds its input to its state.
	cliCounter = reprise.NewEntity("counter", func(ctx *reprise.EntityContext[int]) (any, error) {
		if ctx.Operation() != "add" {
			return nil, fmt.Errorf("counter has no operation %q", ctx.Operation())
		}
		var n int
		if err := ctx.GetInput(&n); err != nil {
			return nil, err
		}
		ctx.SetState(ctx.State() + n)
		return ctx.State(), nil
	})
	// holder locks counter/locked until it receives the event "go".
	holder = reprise.NewOrchestrator("holder", func(ctx *reprise.OrchestrationContext, _ reprise.None) (reprise.None, error) {
		cs, err := ctx.LockEntities(cliCounter.ID("locked"))
		if err != nil {
			return reprise.None{}, err
		}
		defer cs.Release()
		_, err = reprise.WaitForEvent[reprise.None](ctx, "go", 0).Await()
		return reprise.None{}, err
	})
)

// startEntityHost is a host with the counter entity and the holder orchestration, with a system
// key and a master key.
func startEntityHost(t *testing.T) *testHost {
	t.Helper()
	app := reprise.NewApp(append(hosttest.Options(t), reprise.WithKeys(reprise.Keys{System: systemKey, Master: masterKey}))...)
	app.Register(cliCounter, holder)
	srv := hosttest.Serve(t, app)
	return &testHost{app: app, url: srv.URL}
}

// waitEntity polls the entity until cond holds: entities have no completion to wait for.
func (h *testHost) waitEntity(t *testing.T, key string, cond func(*reprise.EntityMetadata) bool) {
	t.Helper()
	ctx := testCtx(t)
	for {
		m, err := h.app.Client().GetEntity(ctx, cliCounter.ID(key))
		if err == nil && cond(m) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("entity counter/%s: condition never met; last %+v, %v", key, m, err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func count(want int) func(*reprise.EntityMetadata) bool {
	return func(m *reprise.EntityMetadata) bool {
		var n int
		return m.GetState(&n) == nil && n == want
	}
}

func TestEntitiesSignalShowList(t *testing.T) {
	t.Parallel()
	h := startEntityHost(t)

	for range 3 {
		if out := h.mustSucceed(t, "entities", "signal", "counter", "cats", "add", "--input", "2"); out != "signalled \"add\" to counter/cats\n" {
			t.Errorf("signal printed %q", out)
		}
	}
	h.mustSucceed(t, "entities", "signal", "Counter", "dogs", "add", "--input", "5")
	h.mustSucceed(t, "entity", "signal", "counter", "", "add", "--input", "1") // the empty key
	h.waitEntity(t, "cats", count(6))
	h.waitEntity(t, "dogs", count(5))
	h.waitEntity(t, "", count(1))

	show := h.mustSucceed(t, "entities", "show", "counter", "cats")
	for _, want := range []string{"entity:            counter/cats\n", "exists:            true\n", "state:             6\n",
		"lockedBy:          (free)\n", "backlog:           0\n", "TIME", "OPERATION", "FROM", "RESULT"} {
		if !strings.Contains(show, want) {
			t.Errorf("show lacks %q:\n%s", want, show)
		}
	}
	if n := strings.Count(show, " add "); n != 3 {
		t.Errorf("show lists %d add operations, want 3:\n%s", n, show)
	}
	if !strings.Contains(h.mustSucceed(t, "entities", "show", "counter", ""), "entity:            counter/''\n") {
		t.Error("show of the empty key does not name it")
	}
	var detail struct {
		Exists bool            `json:"exists"`
		State  json.RawMessage `json:"state"`
	}
	if err := json.Unmarshal([]byte(h.mustSucceed(t, "entities", "show", "counter", "cats", "--json")), &detail); err != nil || !detail.Exists || string(detail.State) != "6" {
		t.Errorf("show --json: %+v, %v", detail, err)
	}
	h.wantExit(t, exitNotFound, []string{"entity counter/nobody not found in the host's default task hub"}, "entities", "show", "counter", "nobody")

	list := h.mustSucceed(t, "entities", "list", "--state")
	for _, want := range []string{"NAME", "KEY", "LAST OPERATION", "STATE", "counter  cats", "counter  dogs", "counter  ''"} {
		if !strings.Contains(list, want) {
			t.Errorf("list lacks %q:\n%s", want, list)
		}
	}
	if lines := strings.Count(list, "\n"); lines != 4 {
		t.Errorf("list has %d lines, want a header and 3 entities:\n%s", lines, list)
	}
	r := h.cli(t, "entities", "list", "--name", "counter", "--top", "1")
	if r.code != 0 || strings.Count(r.stdout, "\n") != 2 || !strings.Contains(r.stderr, "more entities: add --all") {
		t.Errorf("one page: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	var all []struct {
		EntityID struct{ Name, Key string } `json:"entityId"`
		State    json.RawMessage            `json:"state"`
	}
	if err := json.Unmarshal([]byte(h.mustSucceed(t, "entities", "list", "--top", "1", "--all", "--json", "--state")), &all); err != nil || len(all) != 3 {
		t.Fatalf("list --all --json: %v, %+v", err, all)
	}
	states := map[string]string{}
	for _, e := range all {
		states[e.EntityID.Key] = string(e.State)
	}
	if states["cats"] != "6" || states["dogs"] != "5" || states[""] != "1" {
		t.Errorf("states %v", states)
	}
	if out := h.mustSucceed(t, "entities", "list", "--name", "nothing"); out != "no entities found\n" {
		t.Errorf("list of an unknown name: %q", out)
	}
	if out := h.mustSucceed(t, "entities", "list", "--from", "+1h"); out != "no entities found\n" {
		t.Errorf("list --from +1h: %q", out)
	}

	// An entity the host does not have; an operation the counter does not have is accepted
	// (it fails in the entity, which show reports).
	h.wantExit(t, exitHostError, []string{"doesn't exist or is not an entity function registered with this app"}, "entities", "signal", "nothing", "x", "add")
	h.mustSucceed(t, "entities", "signal", "counter", "cats", "explode")
	h.mustSucceed(t, "entities", "signal", "counter", "cats", "add", "--input", "1")
	h.waitEntity(t, "cats", count(7))
	if show := h.mustSucceed(t, "entities", "show", "counter", "cats"); !strings.Contains(show, "explode") || !strings.Contains(show, "failed") {
		t.Errorf("show does not report the failed operation:\n%s", show)
	}
}

func TestEntitiesLockHolder(t *testing.T) {
	t.Parallel()
	h := startEntityHost(t)
	c := h.app.Client()
	h.mustSucceed(t, "entities", "signal", "counter", "locked", "add", "--input", "1")
	h.waitEntity(t, "locked", count(1))
	if _, err := holder.Start(testCtx(t), c, reprise.None{}, reprise.WithInstanceID("holder-1")); err != nil {
		t.Fatal(err)
	}
	h.waitEntity(t, "locked", func(m *reprise.EntityMetadata) bool { return m.LockedBy == "holder-1" })
	h.mustSucceed(t, "entities", "signal", "counter", "locked", "add", "--input", "10")
	h.waitEntity(t, "locked", func(m *reprise.EntityMetadata) bool { return m.BacklogSize == 1 })
	show := h.mustSucceed(t, "entities", "show", "counter", "locked")
	for _, want := range []string{"lockedBy:          holder-1\n", "backlog:           1\n", "state:             1\n"} {
		if !strings.Contains(show, want) {
			t.Errorf("show lacks %q:\n%s", want, show)
		}
	}
	if err := c.RaiseEvent(testCtx(t), "holder-1", "go", nil); err != nil {
		t.Fatal(err)
	}
	h.waitDone(t, "holder-1")
	h.waitEntity(t, "locked", count(11))
	if show := h.mustSucceed(t, "entities", "show", "counter", "locked"); !strings.Contains(show, "lockedBy:          (free)\n") {
		t.Errorf("the lock is still shown after the section ended:\n%s", show)
	}
}

func TestEntitiesClean(t *testing.T) {
	t.Parallel()
	h := startEntityHost(t)
	h.mustSucceed(t, "entities", "signal", "counter", "doomed", "add", "--input", "3")
	h.waitEntity(t, "doomed", count(3))
	h.mustSucceed(t, "entities", "signal", "counter", "doomed", "delete")
	list := func() string { return h.mustSucceed(t, "entities", "list") }
	ctx := testCtx(t)
	for strings.Contains(list(), "doomed") {
		select {
		case <-ctx.Done():
			t.Fatal("the deleted entity is still listed")
		case <-time.After(10 * time.Millisecond):
		}
	}
	// The system key does not clean; the master key does.
	h.wantExit(t, exitUnreachable, []string{"needs the master key", "--key or REPRISE_KEY"}, "entities", "clean", "--idle", "0")
	// Within the idle time the empty entity stays.
	if out := h.mustSucceed(t, "entities", "clean", "--key", masterKey); out != "removed 0 empty entities, released 0 orphaned locks\n" {
		t.Errorf("clean within the idle time: %q", out)
	}
	out := h.mustSucceed(t, "entities", "clean", "--remove-empty", "--idle", "0", "--key", masterKey)
	if out != "removed 1 empty entity, released 0 orphaned locks\n" {
		t.Errorf("clean: %q", out)
	}
	// On this machine without a key the CLI falls back to the loopback route, which needs none.
	r := runCLI(t, map[string]string{"REPRISE_URL": h.url}, "entities", "clean", "--release-locks", "--json")
	if r.code != 0 || strings.TrimSpace(r.stdout) != `{"emptyEntitiesRemoved":0,"orphanedLocksReleased":0}` {
		t.Errorf("clean over the loopback route: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	h.wantExit(t, exitUsage, []string{"--idle must not be negative"}, "entities", "clean", "--idle", "-1s")
}

func TestEntitiesUsageErrors(t *testing.T) {
	t.Parallel()
	env := map[string]string{"REPRISE_URL": "http://127.0.0.1:1"} // never contacted
	for _, c := range []struct {
		args []string
		msgs []string
	}{
		{[]string{"entities"}, []string{"entities needs a subcommand", "Usage: reprise entities"}},
		{[]string{"entities", "frob"}, []string{`unknown command "entities frob"`}},
		{[]string{"entities", "show", "counter"}, []string{"needs an entity name and key, got 1 arguments", "Usage: reprise entities show"}},
		{[]string{"entities", "show", "", "k"}, []string{"the entity name must not be empty"}},
		{[]string{"entities", "show", "a@b", "k"}, []string{"must not contain '@'"}},
		{[]string{"entities", "show", "counter", "k\xff"}, []string{"entity key", "UTF-8"}},
		{[]string{"entities", "signal", "counter", "cats"}, []string{"and an operation"}},
		{[]string{"entities", "signal", "counter", "cats", "add", "--input", "{"}, []string{"input is not valid JSON"}},
		{[]string{"entities", "signal", "counter", "cats", "add", "--input", "1", "--input-file", "f"}, []string{"not both"}},
		{[]string{"entities", "list", "extra"}, []string{"takes no arguments"}},
		{[]string{"entities", "list", "--from", "yesterday"}, []string{"--from", "cannot read"}},
		{[]string{"entities", "list", "--to", "9999-01-01"}, []string{"outside the supported range"}},
		{[]string{"entities", "list", "--top", "-1"}, []string{"--top must be positive"}},
		{[]string{"entities", "clean", "x"}, []string{"takes no arguments"}},
	} {
		checkExit(t, runCLI(t, env, c.args...), exitUsage, c.msgs, c.args)
	}
	for _, args := range [][]string{{"help", "entities"}, {"help", "entities", "signal"}, {"entities", "show", "-h"}, {"entities", "help"}} {
		if r := runCLI(t, env, args...); r.code != 0 || !strings.Contains(r.stdout, "Usage: reprise entities") {
			t.Errorf("reprise %s: exit %d, stdout %q", strings.Join(args, " "), r.code, r.stdout)
		}
	}
	if r := runCLI(t, env, "help"); !strings.Contains(r.stdout, "entities signal     NAME KEY OP") {
		t.Errorf("help does not list the entity commands:\n%s", r.stdout)
	}
}

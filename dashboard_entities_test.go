package reprise_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/reprise-dev/reprise"
	"github.com/reprise-dev/reprise/internal/hosttest"
)

// entityHolder locks the counter of the key it is given, adds 1 to it inside the critical
// section, and holds the lock until it receives the event "release".
var entityHolder = reprise.NewOrchestrator("entity_holder", func(ctx *reprise.OrchestrationContext, key string) (int, error) {
	cs, err := ctx.LockEntities(counter.ID(key))
	if err != nil {
		return 0, err
	}
	defer cs.Release()
	n, err := reprise.CallEntity[int](ctx, counter.ID(key), "add", 1).Await()
	if err != nil {
		return 0, err
	}
	if _, err := reprise.WaitForEvent[string](ctx, "release", 0).Await(); err != nil {
		return 0, err
	}
	return n, nil
})

// entitySignaller signals "add" 5 to the counter of the key it is given: behind a lock, the
// signal waits in the counter's backlog.
var entitySignaller = reprise.NewOrchestrator("entity_signaller", func(ctx *reprise.OrchestrationContext, key string) (reprise.None, error) {
	return reprise.None{}, ctx.SignalEntity(counter.ID(key), "add", 5)
})

// xssEntityKey is an entity key that is markup: the dashboard must show it as text.
const xssEntityKey = `<img src=x onerror=alert(1)>`

// signalDashboardEntities gives the counters of the dashboard tests their state: cats (3, in two
// operations), the key of markup (1), and gone (added to, then deleted: transient).
func signalDashboardEntities(t *testing.T, app *reprise.App) {
	t.Helper()
	c, ctx := app.Client(), testCtx(t)
	for _, s := range []struct {
		key, op string
		input   any
	}{{"cats", "add", 1}, {"cats", "add", 2}, {xssEntityKey, "add", 1}, {"gone", "add", 1}} {
		if err := c.SignalEntity(ctx, counter.ID(s.key), s.op, s.input); err != nil {
			t.Fatal(err)
		}
	}
	waitEntity(t, c, counter.ID("cats"), func(m *reprise.EntityMetadata) bool { return entityCount(m) == 3 })
	waitEntity(t, c, counter.ID(xssEntityKey), func(m *reprise.EntityMetadata) bool { return entityCount(m) == 1 })
	// gone is deleted once it exists, so that "not found" below means the delete ran, not that
	// the add has not yet.
	waitEntity(t, c, counter.ID("gone"), func(m *reprise.EntityMetadata) bool { return entityCount(m) == 1 })
	if err := c.SignalEntity(ctx, counter.ID("gone"), "delete", nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, err := c.GetEntity(ctx, counter.ID("gone"))
		if errors.Is(err, reprise.ErrEntityNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("counter gone still exists after delete: %v", err)
		}
		time.Sleep(5 * time.Millisecond) // entities have no completion to wait for
	}
}

type dashEntityRow struct {
	ID, Name, Key, LastModified, LockedBy string
	Backlog                               int
	Exists                                bool
}

type dashEntityPage struct {
	Entities []dashEntityRow
	Next     string
}

// fresh zeroes *v and returns v, so that a decoded answer holds nothing of the previous one
// (encoding/json keeps the fields an answer leaves out, such as an omitted lockedBy).
func fresh[T any](v *T) *T {
	var zero T
	*v = zero
	return v
}

func entityKeys(p dashEntityPage) string {
	keys := make([]string, len(p.Entities))
	for i, e := range p.Entities {
		keys[i] = e.Key
	}
	return strings.Join(keys, ",")
}

// TestDashboardEntities runs the dashboard's entity API over a real App: the listing's filters and
// paging, transient entities, an entity's lock holder, backlog, state and operations; entities
// stay out of the instances list and counts; hostile input is 400.
func TestDashboardEntities(t *testing.T) {
	app := reprise.NewApp(append(hosttest.Options(t), reprise.WithAnonymousManagement())...)
	app.Register(counter, entityHolder, entitySignaller)
	srv := hosttest.Serve(t, app)
	c, ctx := app.Client(), testCtx(t)
	signalDashboardEntities(t, app)
	api := srv.URL + "/dashboard/api/"

	var info struct{ Entities []string }
	hosttest.Do(t, "GET", api+"info", nil).JSON(t, &info)
	if len(info.Entities) != 1 || info.Entities[0] != "counter" {
		t.Errorf("info entities %v, want [counter]", info.Entities)
	}

	var p dashEntityPage
	hosttest.Do(t, "GET", api+"entities", nil).JSON(t, fresh(&p))
	if got := entityKeys(p); got != xssEntityKey+",cats" && got != "cats,"+xssEntityKey {
		t.Errorf("entities %q: want cats and the markup key, not the transient gone", got)
	}
	for _, e := range p.Entities {
		if e.Name != "counter" || !e.Exists || e.ID != "@counter@"+e.Key || e.LastModified == "" || e.LockedBy != "" {
			t.Errorf("row %+v", e)
		}
	}
	hosttest.Do(t, "GET", api+"entities?transient=true&name=COUNTER", nil).JSON(t, fresh(&p))
	if len(p.Entities) != 3 {
		t.Errorf("with transient entities: %q, want 3", entityKeys(p))
	}
	for _, e := range p.Entities {
		if e.Exists != (e.Key != "gone") {
			t.Errorf("row %+v: only gone is transient", e)
		}
	}
	hosttest.Do(t, "GET", api+"entities?name=counter&key=ca", nil).JSON(t, fresh(&p))
	if entityKeys(p) != "cats" {
		t.Errorf("key prefix ca: %q", entityKeys(p))
	}
	hosttest.Do(t, "GET", api+"entities?name=account", nil).JSON(t, fresh(&p))
	if len(p.Entities) != 0 || p.Entities == nil {
		t.Errorf("another name: %+v, want []", p)
	}
	future := url.QueryEscape(time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	hosttest.Do(t, "GET", api+"entities?modifiedFrom="+future, nil).JSON(t, fresh(&p))
	if len(p.Entities) != 0 {
		t.Errorf("modified from an hour from now: %q", entityKeys(p))
	}
	hosttest.Do(t, "GET", api+"entities?modifiedTo="+future, nil).JSON(t, fresh(&p))
	if len(p.Entities) != 2 {
		t.Errorf("modified before an hour from now: %q", entityKeys(p))
	}

	// Paging: one a page, the token of each page to the next.
	seen := map[string]bool{}
	token := ""
	for pages := 0; ; pages++ {
		hosttest.Do(t, "GET", api+"entities?transient=true&top=1&token="+url.QueryEscape(token), nil).JSON(t, fresh(&p))
		if len(p.Entities) != 1 || seen[p.Entities[0].Key] {
			t.Fatalf("page %d: %+v", pages, p)
		}
		seen[p.Entities[0].Key] = true
		if p.Next == "" {
			break
		}
		if pages > 3 {
			t.Fatal("paging does not end")
		}
		token = p.Next
	}
	if len(seen) != 3 {
		t.Errorf("paged over %v, want the 3 counters", seen)
	}

	// A lock holder and a backlog: holder-1 holds the lock of "locked"; the signaller's add waits.
	if _, err := entityHolder.Start(ctx, c, "locked", reprise.WithInstanceID("holder-1")); err != nil {
		t.Fatal(err)
	}
	waitEntity(t, c, counter.ID("locked"), func(m *reprise.EntityMetadata) bool { return m.LockedBy == "holder-1" && entityCount(m) == 1 })
	if _, err := entitySignaller.Start(ctx, c, "locked", reprise.WithInstanceID("signaller-1")); err != nil {
		t.Fatal(err)
	}
	hosttest.WaitDone(t, app, "signaller-1")
	waitEntity(t, c, counter.ID("locked"), func(m *reprise.EntityMetadata) bool { return m.BacklogSize == 1 })

	type detail struct {
		dashEntityRow
		State      string
		StateCut   bool
		StateBytes int
		Ops        []struct {
			Time, Operation, RequestID, Caller string
			Failed                             bool
		}
	}
	var d detail
	hosttest.Do(t, "GET", api+"entity?name=counter&key=locked", nil).JSON(t, fresh(&d))
	if d.LockedBy != "holder-1" || d.Backlog != 1 || d.State != "1" || !d.Exists || d.StateCut || d.StateBytes != 1 {
		t.Errorf("locked entity: %+v", d)
	}
	if len(d.Ops) != 1 || d.Ops[0].Operation != "add" || d.Ops[0].Caller != "holder-1" || d.Ops[0].RequestID == "" || d.Ops[0].Failed || d.Ops[0].Time == "" {
		t.Errorf("locked entity's ops: %+v, want the holder's add", d.Ops)
	}
	hosttest.Do(t, "GET", api+"entities?name=counter&key=locked", nil).JSON(t, fresh(&p))
	if len(p.Entities) != 1 || p.Entities[0].LockedBy != "holder-1" || p.Entities[0].Backlog != 1 {
		t.Errorf("the listing of the locked entity: %+v", p.Entities)
	}
	hosttest.Do(t, "GET", api+"entity?name=counter&key="+url.QueryEscape(xssEntityKey), nil).JSON(t, fresh(&d))
	if d.Key != xssEntityKey || d.State != "1" || len(d.Ops) != 1 || d.Ops[0].Caller != "" {
		t.Errorf("the entity with the markup key: %+v", d)
	}
	hosttest.Do(t, "GET", api+"entity?name=counter&key=gone", nil).JSON(t, fresh(&d))
	if d.Exists || d.State != "" || len(d.Ops) != 2 || d.Ops[0].Operation != "delete" {
		t.Errorf("the deleted entity: %+v, want no state and its ops newest first", d)
	}
	// Released, the backlog runs: 1 + 5.
	if err := c.RaiseEvent(ctx, "holder-1", "release", "now"); err != nil {
		t.Fatal(err)
	}
	hosttest.WaitDone(t, app, "holder-1")
	waitEntity(t, c, counter.ID("locked"), func(m *reprise.EntityMetadata) bool { return entityCount(m) == 6 })
	hosttest.Do(t, "GET", api+"entity?name=counter&key=locked", nil).JSON(t, fresh(&d))
	if d.LockedBy != "" || d.Backlog != 0 || d.State != "6" || len(d.Ops) != 2 || d.Ops[0].Caller != "" {
		t.Errorf("after the release: %+v", d)
	}

	// Entities are not instances: the list and the counts have only the two orchestrations.
	var insts struct{ Instances []struct{ ID string } }
	hosttest.Do(t, "GET", api+"instances?top=500", nil).JSON(t, &insts)
	if len(insts.Instances) != 2 {
		t.Errorf("instances %+v, want holder-1 and signaller-1 only", insts.Instances)
	}
	for _, i := range insts.Instances {
		if strings.HasPrefix(i.ID, "@") {
			t.Errorf("an entity in the instances list: %s", i.ID)
		}
	}
	var counts struct{ Total int }
	hosttest.Do(t, "GET", api+"counts", nil).JSON(t, &counts)
	if counts.Total != 2 {
		t.Errorf("counts total %d, want 2: entities are not counted", counts.Total)
	}
	if r := hosttest.Do(t, "GET", api+"instances/"+url.PathEscape("@counter@cats"), nil); r.StatusCode != http.StatusNotFound {
		t.Errorf("an entity as an instance: %d %s, want 404", r.StatusCode, r.Body)
	}

	if r := hosttest.Do(t, "GET", api+"entity?name=counter&key=nobody", nil); r.StatusCode != http.StatusNotFound || !strings.Contains(string(r.Body), "@counter@nobody") {
		t.Errorf("unknown entity: %d %s", r.StatusCode, r.Body)
	}
	// Hostile input, through the real control plane and store: 400, never 500.
	for _, q := range []string{
		"entities?token=not-a-token", "entities?token=" + strings.Repeat("A", 3000), "entities?token=%FF",
		"entities?name=%FF", "entities?name=counter&key=%FF%FE", "entities?name=" + strings.Repeat("n", 5000),
		"entities?name=counter&key=" + strings.Repeat("k", 50_000), "entities?modifiedFrom=2026-02-30",
		"entities?modifiedTo=99999-01-01", "entities?top=-1", "entities?transient=yes",
		"entity?name=counter&key=%FF", "entity?name=counter&key=" + strings.Repeat("k", 50_000), "entity?name=c@t&key=x",
		"entity?name=counter&key=a%00",
	} {
		r := hosttest.Do(t, "GET", api+q, nil)
		var body struct{ Message string }
		if r.StatusCode != http.StatusBadRequest || json.Unmarshal(r.Body, &body) != nil || body.Message == "" {
			t.Errorf("GET %.80s: %d %.200s, want 400 with a message", q, r.StatusCode, r.Body)
		}
	}
}
